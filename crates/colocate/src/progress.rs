//! What a run shows on stderr while it works (`migrate`, `rollback`, `apply`, `undistribute`,
//! `demo`), stdout being for the report.
//!
//! - Not on a terminal (a CI log, a pipe): plain lines, one as each step or migration starts
//!   and one as it ends with its duration, so a log shows what runs instead of silence.
//! - On a terminal: a progress bar (indicatif): step n of m, what runs, how long the current
//!   step has run and, while Citus copies a table into its shards, the rows copied so far as
//!   `pg_stat_progress_copy` on the nodes shows them (see `colocate_pg::copy_progress`).
//!   `-v` asks for the plain lines there too.
//! - `-q` shows neither. Lines that explain a wait (another run holds the lock) or a repair
//!   are shown in every mode.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use colocate_pg::copy_progress::{CopyWatch, Watched};
use colocate_pg::Target;
use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::cli::Global;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Lines,
    Bar,
}

impl Mode {
    pub fn of(g: &Global) -> Mode {
        Mode::choose(g.quiet, g.verbose, std::io::stderr().is_terminal())
    }

    fn choose(quiet: bool, verbose: bool, terminal: bool) -> Mode {
        match (quiet, verbose, terminal) {
            (true, _, _) => Mode::Quiet,
            (false, false, true) => Mode::Bar,
            _ => Mode::Lines,
        }
    }
}

/// The step running now.
struct Current {
    index: usize,
    total: usize,
    what: String,
}

pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
    watch: Option<CopyWatch>,
    current: Option<Current>,
}

impl Progress {
    /// Progress for this run. With a bar and `watch` (the target and the application name the
    /// run connects with), rows copied are polled from a second connection while steps run.
    pub fn new(g: &Global, watch: Option<(&Target, &str)>) -> Progress {
        Progress::with_mode(Mode::of(g), watch)
    }

    pub fn with_mode(mode: Mode, watch: Option<(&Target, &str)>) -> Progress {
        let watch = match (mode, watch) {
            (Mode::Bar, Some((target, application))) => Some(CopyWatch::start(target, application)),
            _ => None,
        };
        Progress {
            mode,
            bar: None,
            watch,
            current: None,
        }
    }

    /// Step `index` of `total` starts; `copies` says what it may copy, for the rows count.
    pub fn start(&mut self, index: usize, total: usize, what: String, copies: Option<Watched>) {
        // Counting starts afresh before the bar names the step: never a step shown with the
        // rows of the one before.
        if let Some(w) = &self.watch {
            match copies {
                Some(c) => w.watch(c),
                None => w.idle(),
            }
        }
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => eprintln!("[{index}/{total}] {what}"),
            Mode::Bar => {
                let count = self.watch.as_ref().map(CopyWatch::count);
                let bar = self.bar.get_or_insert_with(|| {
                    let b = bar(total, ProgressDrawTarget::stderr(), move || {
                        count
                            .as_ref()
                            .map_or((None, None), |c| (c.rows(), c.estimate()))
                    });
                    // Redrawn on its own while a step runs: the spinner turns, the time and
                    // the rows copied go on.
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                });
                bar.set_length(total as u64);
                bar.set_position(index.saturating_sub(1) as u64);
                bar.set_message(step_message(index, total, &what));
                // The elapsed time shown is the step's.
                bar.reset_elapsed();
            }
        }
        self.current = Some(Current { index, total, what });
    }

    /// A part of the current step starts (a declarative migration's statement).
    pub fn detail(&mut self, what: &str, copies: Option<Watched>) {
        let Some(cur) = &self.current else {
            return self.say(what);
        };
        if let (Some(w), Some(c)) = (&self.watch, copies) {
            w.watch(c);
        }
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => eprintln!("      {}: {what}", cur.what),
            Mode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!(
                        "{} › {what}",
                        step_message(cur.index, cur.total, &cur.what)
                    ));
                    bar.reset_elapsed();
                }
            }
        }
    }

    /// The current step ended after `elapsed`.
    pub fn done(&mut self, elapsed: Duration) {
        let Some(cur) = self.current.take() else {
            return;
        };
        if let Some(w) = &self.watch {
            w.idle();
        }
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => eprintln!(
                "[{}/{}] {}: done in {}",
                cur.index,
                cur.total,
                cur.what,
                duration(elapsed)
            ),
            Mode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(cur.index as u64);
                }
            }
        }
    }

    /// A line shown whatever the mode (a wait, a repair), above the bar if there is one.
    pub fn say(&self, line: &str) {
        self.suspend(|| eprintln!("{line}"));
    }

    /// Run `f` (which prints) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Remove the bar and stop watching; the report comes next.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some(w) = self.watch.take() {
            w.stop();
        }
    }
}

impl Drop for Progress {
    /// A failed run: the bar goes before the error is printed.
    fn drop(&mut self) {
        self.end();
    }
}

/// A duration as the progress lines show it: milliseconds under a second, else seconds.
pub fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn step_message(index: usize, total: usize, what: &str) -> String {
    format!("[{index}/{total}] {what}")
}

/// What the bar says about rows copied: `412,000 of ~1,000,000 rows copied`, or without the
/// estimate when there is none (or the count passed it); nothing before a copy is seen.
pub fn rows_copied(rows: Option<u64>, estimate: Option<u64>) -> String {
    let Some(n) = rows else {
        return String::new();
    };
    let mut s = HumanCount(n).to_string();
    if let Some(e) = estimate.filter(|e| *e >= n) {
        let _ = write!(s, " of ~{}", HumanCount(e));
    }
    s.push_str(" rows copied");
    s
}

/// The bar: a spinner, steps done of all, the step (truncated to fit), rows copied when known
/// and the step's elapsed time: `⠋ ███████░░░░░░░ [3/8] create_distributed_table public.big
/// 412,000 of ~1,000,000 rows copied  4s`.
fn bar(
    total: usize,
    target: ProgressDrawTarget,
    counts: impl Fn() -> (Option<u64>, Option<u64>) + Send + Sync + Clone + 'static,
) -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} {bar:20} {wide_msg} {rows}{elapsed:>3}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▓░")
        .with_key(
            "rows",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let (rows, estimate) = counts();
                let text = rows_copied(rows, estimate);
                if !text.is_empty() {
                    let _ = write!(w, "{text}  ");
                }
            },
        );
    ProgressBar::with_draw_target(Some(total as u64), target).with_style(style)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    #[test]
    fn modes() {
        assert_eq!(Mode::choose(false, false, false), Mode::Lines);
        assert_eq!(Mode::choose(false, false, true), Mode::Bar);
        assert_eq!(Mode::choose(false, true, true), Mode::Lines);
        assert_eq!(Mode::choose(true, false, true), Mode::Quiet);
        assert_eq!(Mode::choose(true, false, false), Mode::Quiet);
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_micros(2500)), "2 ms");
        assert_eq!(duration(Duration::from_millis(999)), "999 ms");
        assert_eq!(duration(Duration::from_millis(7940)), "7.9 s");
    }

    #[test]
    fn rows_copied_says_what_is_known() {
        assert_eq!(rows_copied(None, Some(1_000_000)), "");
        assert_eq!(
            rows_copied(Some(412_000), Some(1_000_000)),
            "412,000 of ~1,000,000 rows copied"
        );
        assert_eq!(rows_copied(Some(412_000), None), "412,000 rows copied");
        // An estimate the count has passed is no longer shown.
        assert_eq!(rows_copied(Some(1_200), Some(1_000)), "1,200 rows copied");
    }

    /// A terminal `width` columns wide that keeps every line drawn.
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<Vec<String>>>, u16);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            self.1
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            if !s.is_empty() {
                self.0.lock().unwrap().push(s.to_string());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines of step 3 of 8 that a bar draws on a screen `width` wide: before rows are
    /// known and after.
    fn draw(width: u16) -> (String, String) {
        let screen = Screen(Arc::default(), width);
        let counts = Arc::new(Mutex::new((None, None)));
        let c = Arc::clone(&counts);
        let b = bar(
            8,
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
            move || *c.lock().unwrap(),
        );
        b.set_position(2);
        b.set_message(step_message(3, 8, "create_distributed_table public.big"));
        b.tick();
        *counts.lock().unwrap() = (Some(412_000), Some(1_000_000));
        // indicatif draws at most every few milliseconds.
        std::thread::sleep(Duration::from_millis(60));
        b.tick();
        let lines: Vec<String> = screen
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("[3/8]"))
            .cloned()
            .collect();
        // Past the spinner, whose frame depends on how often it was drawn.
        let unspun = |l: &String| l.chars().skip(1).collect::<String>();
        let first = lines.first().expect("a line drawn");
        (unspun(first), unspun(lines.last().unwrap()))
    }

    #[test]
    fn the_bar_shows_the_step_rows_copied_and_elapsed_time() {
        let (before, after) = draw(120);
        assert_eq!(
            before.trim_end(),
            " █████▓░░░░░░░░░░░░░░ [3/8] create_distributed_table public.big                                                      0s"
        );
        assert_eq!(
            after,
            " █████▓░░░░░░░░░░░░░░ [3/8] create_distributed_table public.big                  412,000 of ~1,000,000 rows copied   0s"
        );
    }

    #[test]
    fn a_narrow_terminal_cuts_the_step_not_the_count() {
        let (_, after) = draw(100);
        assert_eq!(
            after,
            " █████▓░░░░░░░░░░░░░░ [3/8] create_distributed_table public. 412,000 of ~1,000,000 rows copied   0s"
        );
        assert_eq!(after.chars().count(), 99);
    }
}
