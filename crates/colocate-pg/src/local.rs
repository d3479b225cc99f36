//! A throwaway PostgreSQL server on 127.0.0.1 for `colocate demo`: initdb into a temporary
//! directory, start on a free port, stop and delete on drop. PostgreSQL refuses to run as root,
//! so as root the server runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{ErrorKind, PgError};

pub struct LocalServer {
    bin: PathBuf,
    dir: PathBuf,
    /// Coordinator first, then workers: (data directory, port).
    nodes: Vec<(PathBuf, u16)>,
    citus: bool,
    keep: bool,
}

fn is_root() -> bool {
    // /proc/self/status is always there on Linux and needs no unsafe libc call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn find_bin() -> Result<PathBuf, PgError> {
    if let Ok(b) = std::env::var("COLOCATE_PG_BIN") {
        return Ok(PathBuf::from(b));
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    candidates.retain(|p| p.join("initdb").exists());
    candidates.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    candidates.pop().ok_or_else(|| {
        ErrorKind::NoServer("/usr/lib/postgresql/*/bin, $COLOCATE_PG_BIN".into()).into()
    })
}

fn free_port() -> Result<u16, PgError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl LocalServer {
    /// Start a fresh server (with Citus preloaded when it is installed) and, with Citus,
    /// `workers` more on other loopback ports. With `keep`, they are left running when dropped.
    pub fn start(keep: bool, workers: usize) -> Result<LocalServer, PgError> {
        let bin = find_bin()?;
        sweep_stale(&std::env::temp_dir());
        let dir = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            free_port()?
        ));
        std::fs::create_dir_all(&dir)?;
        if is_root() {
            chown_postgres(&dir)?;
        }
        let citus = citus_installed(&bin);
        let mut server = LocalServer {
            bin,
            dir,
            nodes: Vec::new(),
            citus,
            keep,
        };
        let count = 1 + if citus { workers } else { 0 };
        for i in 0..count {
            server.start_node(i)?;
        }
        Ok(server)
    }

    fn start_node(&mut self, i: usize) -> Result<(), PgError> {
        let name = if i == 0 {
            "coordinator".to_string()
        } else {
            format!("worker{i}")
        };
        let data = self.dir.join(&name);
        self.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth=trust",
            ],
        )?;
        let port = free_port()?;
        let mut opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.dir.display()
        );
        if self.citus {
            opts.push_str(" -c shared_preload_libraries=citus");
        }
        let log = self.dir.join(format!("{name}.log"));
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        self.nodes.push((data, port));
        Ok(())
    }

    /// The coordinator's URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port())
    }

    pub fn port(&self) -> u16 {
        self.nodes.first().map(|n| n.1).unwrap_or(0)
    }

    /// Ports of the workers (empty without Citus or when none were asked for).
    pub fn worker_ports(&self) -> Vec<u16> {
        self.nodes.iter().skip(1).map(|n| n.1).collect()
    }

    pub fn citus(&self) -> bool {
        self.citus
    }

    /// Create database `db` on every node and return the coordinator's URL for it. With Citus,
    /// the extension is created on every node and the coordinator's database becomes a cluster:
    /// on its own it holds the shards itself, with workers they are registered.
    pub fn create_database(&self, db: &str) -> Result<String, PgError> {
        use postgres_protocol::escape::escape_identifier;
        let connect = |url: &str| -> Result<postgres::Client, PgError> {
            postgres::Client::connect(url, postgres::NoTls)
                .map_err(|e| PgError::query(format!("connect to {url}"), &e))
        };
        let q =
            |e: postgres::Error, what: &str| -> PgError { PgError::query(what.to_string(), &e) };
        for (_, port) in &self.nodes {
            let admin = format!("postgres://postgres@127.0.0.1:{port}/postgres");
            connect(&admin)?
                .batch_execute(&format!("CREATE DATABASE {}", escape_identifier(db)))
                .map_err(|e| q(e, "create database"))?;
            if self.citus {
                let url = format!("postgres://postgres@127.0.0.1:{port}/{db}");
                connect(&url)?
                    .batch_execute("CREATE EXTENSION citus")
                    .map_err(|e| q(e, "create extension citus"))?;
            }
        }
        let url = self.url(db);
        if self.citus {
            let mut c = connect(&url)?;
            let port = i32::from(self.port());
            c.execute(
                "SELECT citus_set_coordinator_host('127.0.0.1', $1)",
                &[&port],
            )
            .map_err(|e| q(e, "citus_set_coordinator_host"))?;
            if self.nodes.len() == 1 {
                c.execute(
                    "SELECT citus_set_node_property('127.0.0.1', $1, 'shouldhaveshards', true)",
                    &[&port],
                )
                .map_err(|e| q(e, "let the coordinator hold shards"))?;
            }
            for p in self.worker_ports() {
                c.execute("SELECT citus_add_node('127.0.0.1', $1)", &[&i32::from(p)])
                    .map_err(|e| q(e, "citus_add_node"))?;
            }
        }
        Ok(url)
    }

    /// The command that removes the data of the servers `keep` left, once they are stopped.
    pub fn remove_command(&self) -> String {
        format!("rm -rf {}", self.dir.display())
    }

    /// The commands that stop the servers left running by `keep`, coordinator first.
    pub fn stop_commands(&self) -> Vec<String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let prefix = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        self.nodes
            .iter()
            .map(|(data, _)| format!("{prefix}{} -D {} stop", pg_ctl.display(), data.display()))
            .collect()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), PgError> {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out =
            cmd.args(args)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| ErrorKind::LocalServer {
                    step: tool.into(),
                    output: e.to_string(),
                })?;
        if out.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Err(ErrorKind::LocalServer {
            step: tool.into(),
            output: text,
        }
        .into())
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for (data, _) in self.nodes.clone() {
            let _ = self.run("pg_ctl", &["-D", path_str(&data), "-m", "fast", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What every demo server's directory is named from: `colocate-demo-PID-PORT`.
const DIR_PREFIX: &str = "colocate-demo-";

/// Remove what demo runs that were killed left in `tmp`: directories of a process that is gone
/// and whose servers are all stopped (a server `--keep` left running keeps its directory).
fn sweep_stale(tmp: &Path) {
    let alive = |pid: &str| Path::new("/proc").join(pid.trim()).exists();
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || alive(pid) {
            continue;
        }
        let running = std::fs::read_dir(e.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|node| std::fs::read_to_string(node.path().join("postmaster.pid")).ok())
            .any(|pidfile| pidfile.lines().next().is_some_and(alive));
        if !running {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn chown_postgres(dir: &Path) -> Result<(), PgError> {
    let out = Command::new("chown")
        .arg("postgres:")
        .arg(dir)
        .output()
        .map_err(|e| ErrorKind::LocalServer {
            step: "chown".into(),
            output: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(ErrorKind::LocalServer {
            step: "chown (is there a `postgres` user?)".into(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into());
    }
    Ok(())
}

fn citus_installed(bin: &Path) -> bool {
    let Ok(out) = Command::new(bin.join("pg_config"))
        .arg("--sharedir")
        .output()
    else {
        return false;
    };
    let share = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&share).join("extension/citus.control").exists()
}
