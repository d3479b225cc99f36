//! Where to connect, from `--database-url` / `DATABASE_URL` or libpq's `PG*` variables, and a
//! printable form of it that never carries the password.

use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use postgres::{Client, Config, NoTls};

use crate::error::{ConnectFailure, ErrorKind, PgError};

/// A database to connect to. `Display` shows it without the password.
#[derive(Clone)]
pub struct Target {
    config: Config,
    shown: String,
    /// Neither a URL nor a key=value string was given: libpq's defaults and `PG*` variables.
    defaults: bool,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Target {
    /// Build from a libpq URL or key=value string; what it leaves out comes from `PGHOST`,
    /// `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE` and `PGCONNECT_TIMEOUT`, as with libpq.
    pub fn new(url: Option<&str>) -> Result<Target, PgError> {
        if let Some(u) = url {
            if let Some((scheme, _)) = u.split_once("://") {
                if scheme != "postgres" && scheme != "postgresql" {
                    return Err(ErrorKind::BadUrl(format!(
                        "{}:// is not a PostgreSQL URL: colocate works on PostgreSQL (postgres:// or postgresql://)",
                        scheme.chars().filter(|c| c.is_ascii_alphanumeric() || "+-.".contains(*c)).collect::<String>()
                    ))
                    .into());
                }
            }
            let is_url = u.starts_with("postgres://") || u.starts_with("postgresql://");
            if is_url && u.matches('@').count() > 1 {
                // Parsers disagree on which '@' ends the password: refuse rather than guess and
                // print part of it back as a host name.
                return Err(ErrorKind::BadUrl(
                    "the URL has more than one '@': percent-encode '@' in the user name or password as %40"
                        .into(),
                ).into());
            }
        }
        let mut config = match url {
            // The parser's message never echoes the input, but scrub it anyway: a URL can hold a
            // password.
            Some(u) => {
                Config::from_str(u).map_err(|e| ErrorKind::BadUrl(scrub(&e.to_string(), u)))?
            }
            None => Config::new(),
        };
        if config.get_hosts().is_empty() {
            match env("PGHOST") {
                Some(h) => {
                    for h in h.split(',') {
                        config.host(h);
                    }
                }
                None => {
                    config.host("localhost");
                }
            }
        }
        if config.get_ports().is_empty() {
            if let Some(p) = env("PGPORT") {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| ErrorKind::BadUrl(format!("PGPORT={p} is not a port number")))?;
                config.port(port);
            }
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".into());
            config.user(&user);
        }
        if config.get_password().is_none() {
            if let Some(p) = env("PGPASSWORD") {
                config.password(p);
            }
        }
        if config.get_dbname().is_none() {
            let db = env("PGDATABASE").unwrap_or_else(|| config.get_user().unwrap_or("").into());
            config.dbname(&db);
        }
        if config.get_connect_timeout().is_none() {
            let secs = env("PGCONNECT_TIMEOUT")
                .and_then(|s| s.parse().ok())
                .unwrap_or(10);
            config.connect_timeout(Duration::from_secs(secs));
        }
        let shown = show(&config);
        Ok(Target {
            config,
            shown,
            defaults: url.is_none(),
        })
    }

    /// Connect, naming the connection `application` in `pg_stat_activity`.
    pub fn connect(&self, application: &str) -> Result<Client, PgError> {
        let mut config = self.config.clone();
        config.application_name(application);
        config.notice_callback(|n| crate::topology::observe_notice(n.message()));
        config.connect(NoTls).map_err(|e| {
            ErrorKind::Connect {
                target: self.shown.clone(),
                reason: self.scrub(&connect_reason(&e)),
                why: self.failure(&e),
            }
            .into()
        })
    }

    /// What a failed connection says the user should change.
    fn failure(&self, e: &postgres::Error) -> ConnectFailure {
        use postgres::error::SqlState;
        let defaults = self.defaults;
        if let Some(db) = e.as_db_error() {
            return match db.code() {
                c if *c == SqlState::INVALID_CATALOG_NAME => ConnectFailure::NoDatabase {
                    name: self.dbname().to_string(),
                },
                c if *c == SqlState::INVALID_PASSWORD => {
                    ConnectFailure::Password { missing: false }
                }
                c if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                    && db.message().starts_with("role ") =>
                {
                    ConnectFailure::NoRole {
                        name: self.config.get_user().unwrap_or("").to_string(),
                    }
                }
                _ => ConnectFailure::Other { defaults },
            };
        }
        let text = connect_reason(e);
        if text.contains("password missing") {
            ConnectFailure::Password { missing: true }
        } else if std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            || text.contains("os error")
            || text.contains("timed out")
        {
            ConnectFailure::NoServer { defaults }
        } else {
            ConnectFailure::Other { defaults }
        }
    }

    /// Remove the password from any text that might contain it.
    pub fn scrub(&self, text: &str) -> String {
        match self.config.get_password() {
            Some(p) if !p.is_empty() => {
                let p = String::from_utf8_lossy(p);
                text.replace(p.as_ref(), "********")
            }
            _ => text.to_string(),
        }
    }

    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or("")
    }
}

fn connect_reason(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// Scrub anything in `text` that looks like the password part of `url`.
fn scrub(text: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('@').next().filter(|_| rest.contains('@')))
        .and_then(|userinfo| userinfo.split_once(':'))
        .map(|(_, p)| p);
    match password {
        Some(p) if !p.is_empty() => text.replace(p, "********"),
        _ => text.to_string(),
    }
}

fn show(config: &Config) -> String {
    let user = config.get_user().unwrap_or("");
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        user,
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_form_never_has_the_password() {
        let t = Target::new(Some("postgres://alice:s3cr%40t@db.example:6432/app")).unwrap();
        assert_eq!(t.to_string(), "postgres://alice@db.example:6432/app");
        assert!(!format!("{t:?}").contains("s3cr"));
    }

    #[test]
    fn key_value_strings_work() {
        let t = Target::new(Some(
            "host=127.0.0.1 port=5555 user=bob dbname=x password=pw",
        ))
        .unwrap();
        assert_eq!(t.to_string(), "postgres://bob@127.0.0.1:5555/x");
        assert_eq!(t.scrub("oops pw leaked"), "oops ******** leaked");
    }

    #[test]
    fn bad_url_error_does_not_echo_password() {
        let err = Target::new(Some("postgres://u:hunter2@h:notaport/db")).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
