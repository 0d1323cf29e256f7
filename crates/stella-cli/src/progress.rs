//! Progress bars (indicatif) for blob transfers, implementing
//! `stella_oci::store::Progress`. Shown only when standard error is a
//! terminal and `--no-progress` is not given; otherwise nothing is drawn.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use stella_oci::store::{NoProgress, Progress};

use crate::cli::RegistryArgs;

/// One bar per transfer, drawn on standard error.
pub struct BarProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for BarProgress {
    fn start(&self, label: &str, total: u64) {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>20.dim} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let short: String = label.chars().take(20).collect();
        bar.set_message(short);
        if let Ok(mut slot) = self.bar.lock()
            && let Some(old) = slot.replace(bar)
        {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(b) = slot.as_ref()
        {
            b.inc(n);
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(b) = slot.take()
        {
            b.finish_and_clear();
        }
    }
}

/// The progress reporter for this run.
pub fn for_args(args: &RegistryArgs) -> Box<dyn Progress> {
    if !args.no_progress && std::io::stderr().is_terminal() {
        Box::new(BarProgress {
            bar: Mutex::new(None),
        })
    } else {
        Box::new(NoProgress)
    }
}
