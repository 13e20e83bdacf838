//! Progress on long transfers: `task.setprogress` when the percentage moves,
//! a log line at most every few seconds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use vsts_task::Console;

use crate::human_bytes;

pub struct Progress {
    console: Console,
    verb: &'static str,
    total_files: u64,
    total_bytes: u64,
    state: Mutex<State>,
}

struct State {
    files: u64,
    bytes: u64,
    percent: u32,
    last_line: Instant,
    started: Instant,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    pub fn new(console: &Console, verb: &'static str, total_files: u64, total_bytes: u64) -> Self {
        let now = Instant::now();
        Progress {
            console: console.clone(),
            verb,
            total_files,
            total_bytes,
            state: Mutex::new(State {
                files: 0,
                bytes: 0,
                percent: 0,
                last_line: now,
                started: now,
            }),
        }
    }

    /// Bytes moved (a part or a whole small file).
    pub fn bytes(&self, n: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.bytes += n;
        self.report(&mut s);
    }

    /// A file finished.
    pub fn file_done(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.files += 1;
        self.report(&mut s);
    }

    fn report(&self, s: &mut State) {
        // Weigh files and bytes alike, so many small files move the bar too.
        let f = if self.total_files == 0 {
            1.0
        } else {
            s.files as f64 / self.total_files as f64
        };
        let b = if self.total_bytes == 0 {
            f
        } else {
            s.bytes as f64 / self.total_bytes as f64
        };
        let percent = (((f + b) / 2.0) * 100.0).floor().min(100.0) as u32;
        if percent != s.percent {
            s.percent = percent;
            self.console.set_progress(
                percent,
                &format!("{} {}/{} files", self.verb, s.files, self.total_files),
            );
        }
        if s.last_line.elapsed() >= LINE_EVERY {
            s.last_line = Instant::now();
            let secs = s.started.elapsed().as_secs_f64().max(0.001);
            self.console.info(&format!(
                "{} {}/{} files, {} of {} ({}/s)",
                self.verb,
                s.files,
                self.total_files,
                human_bytes(s.bytes),
                human_bytes(self.total_bytes),
                human_bytes((s.bytes as f64 / secs) as u64)
            ));
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .started
            .elapsed()
    }
}
