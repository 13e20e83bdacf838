//! Progress on long transfers: `task.setprogress` when the percentage moves,
//! a log line at most every few seconds, and only when files or bytes moved
//! since the last one (a transfer waiting on retries prints nothing new).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use vsts_task::Console;

use crate::human_bytes;

pub struct Progress {
    console: Console,
    verb: &'static str,
    total_files: u64,
    total_bytes: u64,
    every: Duration,
    state: Mutex<State>,
}

struct State {
    files: u64,
    bytes: u64,
    percent: u32,
    last_line: Instant,
    /// (files, bytes) of the last line printed.
    printed: (u64, u64),
    started: Instant,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    pub fn new(console: &Console, verb: &'static str, total_files: u64, total_bytes: u64) -> Self {
        Self::every(LINE_EVERY, console, verb, total_files, total_bytes)
    }

    fn every(
        every: Duration,
        console: &Console,
        verb: &'static str,
        total_files: u64,
        total_bytes: u64,
    ) -> Self {
        let now = Instant::now();
        Progress {
            console: console.clone(),
            verb,
            total_files,
            total_bytes,
            every,
            state: Mutex::new(State {
                files: 0,
                bytes: 0,
                percent: 0,
                last_line: now,
                printed: (0, 0),
                started: now,
            }),
        }
    }

    /// Bytes moved (a part or a whole small file).
    pub fn bytes(&self, n: u64) {
        if n == 0 {
            return;
        }
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
        // One file (a bundle, a layer): its bytes; more: files too.
        let single = self.total_files == 1;
        let share = if single { b } else { (f + b) / 2.0 };
        let percent = (share * 100.0).floor().min(100.0) as u32;
        if percent != s.percent {
            s.percent = percent;
            let text = if single {
                format!(
                    "{} {} of {}",
                    self.verb,
                    human_bytes(s.bytes),
                    human_bytes(self.total_bytes)
                )
            } else {
                format!("{} {}/{} files", self.verb, s.files, self.total_files)
            };
            self.console.set_progress(percent, &text);
        }
        if s.last_line.elapsed() >= self.every && s.printed != (s.files, s.bytes) {
            s.last_line = Instant::now();
            s.printed = (s.files, s.bytes);
            let secs = s.started.elapsed().as_secs_f64().max(0.001);
            let files = if single {
                String::new()
            } else {
                format!("{}/{} files, ", s.files, self.total_files)
            };
            self.console.info(&format!(
                "{} {files}{} of {} ({}/s)",
                self.verb,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_only_when_files_or_bytes_moved() {
        let (console, log) = Console::capture(false);
        let p = Progress::every(Duration::ZERO, &console, "Downloaded", 2, 200);
        let lines = || {
            log.text()
                .lines()
                .filter(|l| l.starts_with("Downloaded"))
                .count()
        };
        p.bytes(100);
        assert_eq!(lines(), 1);
        p.bytes(0);
        assert_eq!(lines(), 1, "nothing moved: {}", log.text());
        p.file_done();
        assert_eq!(lines(), 2);
        p.bytes(100);
        p.file_done();
        assert_eq!(lines(), 4);
        assert!(
            log.text().contains("Downloaded 2/2 files, 200 B of 200 B"),
            "{}",
            log.text()
        );
    }

    /// One file (a deployment bundle) is counted in bytes only: no
    /// "0/1 files" while it is on its way.
    #[test]
    fn one_file_is_counted_in_bytes() {
        let (console, log) = Console::capture(false);
        let p = Progress::every(Duration::ZERO, &console, "Uploaded", 1, 200);
        p.bytes(100);
        p.bytes(100);
        p.file_done();
        let text = log.text();
        assert!(text.contains("Uploaded 100 B of 200 B ("), "{text}");
        assert!(
            text.contains("##vso[task.setprogress value=50;]Uploaded 100 B of 200 B"),
            "{text}"
        );
        assert!(!text.contains("files"), "{text}");
    }
}
