//! What the .vsix weighs, per task and per platform, and the limits it must
//! keep: the Marketplace refuses packages over 100 MB (with an exception
//! granted to the publisher; 25 MB without one), and Azure DevOps Server
//! 2019 refuses uploads over 25 MB by default.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{Result, bail};

use crate::layout::{Binaries, TaskSource};
use crate::platforms::PLATFORMS;

/// The Marketplace's hard ceiling.
pub const HARD_LIMIT: u64 = 100_000_000;
/// The Marketplace's default and Azure DevOps Server 2019's upload limit.
pub const SOFT_LIMIT: u64 = 25_000_000;

#[derive(Debug)]
pub struct Report {
    /// Platforms in packing order.
    pub platforms: Vec<String>,
    /// task → platform → (binary size, its share of the packed stream).
    pub rows: BTreeMap<String, BTreeMap<String, (u64, u64)>>,
    /// task → packed stream size.
    pub packed: BTreeMap<String, u64>,
    pub vsix: u64,
}

impl Report {
    pub fn measure(
        tasks: &[TaskSource],
        binaries: &Binaries,
        staged: &Path,
        vsix: &Path,
    ) -> Result<Report> {
        let mut platforms: Vec<String> = binaries.keys().cloned().collect();
        platforms.sort_by_key(|p| PLATFORMS.iter().position(|q| q.name == p));
        let mut rows = BTreeMap::new();
        let mut packed = BTreeMap::new();
        for t in tasks {
            let stream = staged
                .join("tasks")
                .join(&t.name)
                .join("bin")
                .join(format!("{}.br", t.binary));
            let packed_size = std::fs::metadata(&stream).map(|m| m.len()).unwrap_or(0);
            let mut sizes = BTreeMap::new();
            for (platform, bins) in binaries {
                if let Some(path) = bins.get(&t.binary) {
                    sizes.insert(platform.clone(), std::fs::metadata(path)?.len());
                }
            }
            let raw_total: u64 = sizes.values().sum();
            // The stream is one; a platform's share is counted in proportion
            // to its binary's size (an estimate, for choosing subsets).
            let row = sizes
                .into_iter()
                .map(|(p, raw)| {
                    let share = (packed_size as u128 * raw as u128)
                        .checked_div(raw_total as u128)
                        .unwrap_or(0) as u64;
                    (p, (raw, share))
                })
                .collect();
            rows.insert(t.name.clone(), row);
            packed.insert(t.name.clone(), packed_size);
        }
        Ok(Report {
            platforms,
            rows,
            packed,
            vsix: std::fs::metadata(vsix)?.len(),
        })
    }

    fn platform_share(&self, platform: &str) -> u64 {
        self.rows
            .values()
            .filter_map(|r| r.get(platform))
            .map(|(_, share)| share)
            .sum()
    }

    /// What is not binaries: manifests, icons, launchers, zip overhead.
    fn overhead(&self) -> u64 {
        self.vsix.saturating_sub(self.packed.values().sum())
    }

    /// The largest subsets of the built platforms whose .vsix would stay
    /// under `limit` (estimated), each with its estimated size.
    pub fn subsets_under(&self, limit: u64) -> Vec<(Vec<String>, u64)> {
        let n = self.platforms.len();
        let mut fitting: Vec<(u32, u64)> = Vec::new();
        for mask in 1u32..(1 << n) {
            let size = self.overhead()
                + (0..n)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| self.platform_share(&self.platforms[i]))
                    .sum::<u64>();
            if size <= limit {
                fitting.push((mask, size));
            }
        }
        let maximal: Vec<(u32, u64)> = fitting
            .iter()
            .filter(|(m, _)| !fitting.iter().any(|(o, _)| o != m && o & m == *m))
            .copied()
            .collect();
        maximal
            .into_iter()
            .map(|(mask, size)| {
                let names = (0..n)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| self.platforms[i].clone())
                    .collect();
                (names, size)
            })
            .collect()
    }

    /// Refuses a .vsix over the hard ceiling; warns over the soft one. Both
    /// name the `--platform` subsets that fit.
    pub fn check_limits(&self) -> Result<()> {
        let list = |limit| {
            self.subsets_under(limit)
                .iter()
                .map(|(names, size)| {
                    format!("--platform {} (about {})", names.join(","), mb(*size))
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        if self.vsix > HARD_LIMIT {
            bail!(
                "the .vsix would be {}, over the Marketplace's ceiling of {}: not written. Subsets that fit: {}",
                mb(self.vsix),
                mb(HARD_LIMIT),
                list(HARD_LIMIT)
            );
        }
        if self.vsix > SOFT_LIMIT {
            println!(
                "warning: the .vsix is {}, over {} (the Marketplace's limit without an exception, and Azure DevOps Server 2019's default upload limit). Subsets under it: {}",
                mb(self.vsix),
                mb(SOFT_LIMIT),
                list(SOFT_LIMIT)
            );
        }
        Ok(())
    }
}

pub fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1_000_000.0)
}

impl fmt::Display for Report {
    /// A Markdown table: per task, each platform's binary size, and the
    /// task's packed stream; totals per platform (packed shares) last.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n| task |")?;
        for p in &self.platforms {
            write!(f, " {p} |")?;
        }
        writeln!(f, " packed, all platforms |")?;
        write!(f, "|---|")?;
        for _ in &self.platforms {
            write!(f, "---:|")?;
        }
        writeln!(f, "---:|")?;
        for (task, row) in &self.rows {
            write!(f, "| {task} |")?;
            for p in &self.platforms {
                match row.get(p) {
                    Some((raw, _)) => write!(f, " {} |", mb(*raw))?,
                    None => write!(f, " - |")?,
                }
            }
            writeln!(f, " {} |", mb(self.packed[task]))?;
        }
        write!(f, "| packed share |")?;
        for p in &self.platforms {
            write!(f, " {} |", mb(self.platform_share(p)))?;
        }
        writeln!(f, " {} |", mb(self.packed.values().sum()))?;
        let tasks = self.rows.len().max(1) as u64;
        writeln!(
            f,
            "\n.vsix: {} for {} task(s) on {} platform(s); {} per task on average",
            mb(self.vsix),
            self.rows.len(),
            self.platforms.len(),
            mb(self.vsix / tasks)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(vsix: u64) -> Report {
        let platforms: Vec<String> = ["linux-x64", "win32-x64", "darwin-arm64"]
            .map(String::from)
            .to_vec();
        let row: BTreeMap<String, (u64, u64)> = [
            ("linux-x64".to_string(), (3_000_000, 10_000_000)),
            ("win32-x64".to_string(), (3_000_000, 10_000_000)),
            ("darwin-arm64".to_string(), (2_000_000, 8_000_000)),
        ]
        .into();
        Report {
            platforms,
            rows: [("T".to_string(), row)].into(),
            packed: [("T".to_string(), 28_000_000)].into(),
            vsix,
        }
    }

    #[test]
    fn the_largest_subsets_that_fit_are_named() {
        let r = report(29_000_000);
        let mut fits = r.subsets_under(SOFT_LIMIT);
        fits.sort();
        assert_eq!(
            fits,
            [
                (
                    vec!["linux-x64".to_string(), "darwin-arm64".into()],
                    19_000_000
                ),
                (
                    vec!["linux-x64".to_string(), "win32-x64".into()],
                    21_000_000
                ),
                (
                    vec!["win32-x64".to_string(), "darwin-arm64".into()],
                    19_000_000
                ),
            ]
        );
        assert!(r.check_limits().is_ok());
    }

    #[test]
    fn over_the_ceiling_is_refused_naming_what_fits() {
        let e = report(101_000_000).check_limits().unwrap_err().to_string();
        assert!(e.contains("101.00 MB"), "{e}");
        assert!(e.contains("not written"), "{e}");
        assert!(
            e.contains("--platform linux-x64,win32-x64 (about 93.00 MB)"),
            "{e}"
        );
    }
}
