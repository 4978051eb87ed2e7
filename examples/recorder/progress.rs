//! One progress bar per chunk, on stderr when it is a terminal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use acs_recording::download::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub(crate) struct ProgressBars {
    multi: MultiProgress,
    bars: Arc<Mutex<HashMap<(String, i64), ProgressBar>>>,
}

impl ProgressBars {
    pub(crate) fn new() -> Self {
        Self { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), bars: Arc::default() }
    }

    pub(crate) fn update(&self, progress: &Progress<'_>) {
        let mut bars = self.bars.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bar = bars.entry((progress.call_id.to_owned(), progress.index)).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(progress.chunk_total.unwrap_or(0)));
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix:>18} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(format!("{} #{}", progress.call_id, progress.index));
            bar
        });
        if let Some(total) = progress.chunk_total {
            bar.set_length(total);
        }
        bar.set_position(progress.chunk_bytes);
        if progress.chunk_total == Some(progress.chunk_bytes) {
            bar.finish_with_message("done");
        }
    }
}
