//! The disk spool: batches waiting for the collector, one file each, so that
//! events survive a collector outage and a restart of the process. Files are
//! written whole (a temporary file renamed), sent oldest first, and removed
//! once delivered; the spool holds at most its byte budget, forgetting the
//! oldest batches (counted as dropped) beyond it.

use std::path::{Path, PathBuf};

/// One spooled batch: its file, the body as sent (gzip'd JSON) and its
/// number of events.
#[derive(Debug)]
pub(super) struct Spooled {
    pub path: PathBuf,
    pub body: Vec<u8>,
    pub events: usize,
}

#[derive(Debug)]
pub(super) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    next_seq: u64,
}

/// A file's name: `<sequence>-<events>.batch`.
fn parse_name(path: &Path) -> Option<(u64, usize)> {
    let name = path.file_name()?.to_str()?.strip_suffix(".batch")?;
    let (seq, events) = name.split_once('-')?;
    Some((seq.parse().ok()?, events.parse().ok()?))
}

impl Spool {
    /// The spool in `dir` (created when missing).
    pub(super) fn open(dir: PathBuf, max_bytes: u64) -> std::io::Result<Spool> {
        std::fs::create_dir_all(&dir)?;
        let mut spool = Spool {
            dir,
            max_bytes,
            next_seq: 0,
        };
        spool.next_seq = spool.files()?.last().map_or(0, |(seq, _, _)| seq + 1);
        Ok(spool)
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The spooled batches' files, oldest first: (sequence, events, path).
    fn files(&self) -> std::io::Result<Vec<(u64, usize, PathBuf)>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if let Some((seq, events)) = parse_name(&path) {
                files.push((seq, events, path));
            }
        }
        files.sort();
        Ok(files)
    }

    /// The events waiting in the spool.
    pub(super) fn events(&self) -> usize {
        self.files()
            .map(|files| files.iter().map(|(_, events, _)| events).sum())
            .unwrap_or(0)
    }

    /// The oldest batch, if any.
    pub(super) fn oldest(&self) -> std::io::Result<Option<Spooled>> {
        let Some((_, events, path)) = self.files()?.into_iter().next() else {
            return Ok(None);
        };
        let body = std::fs::read(&path)?;
        Ok(Some(Spooled { path, body, events }))
    }

    /// Writes a batch. Returns its file, and the events of the oldest batches
    /// forgotten to stay within the budget.
    pub(super) fn push(&mut self, body: &[u8], events: usize) -> std::io::Result<(PathBuf, usize)> {
        let name = format!("{:020}-{events}.batch", self.next_seq);
        self.next_seq += 1;
        let temporary = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&temporary, body)?;
        let file = self.dir.join(&name);
        std::fs::rename(&temporary, &file)?;
        let mut files = self.files()?;
        let mut total: u64 = files
            .iter()
            .map(|(_, _, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        let mut forgotten = 0;
        // Never the batch just written.
        while total > self.max_bytes && files.len() > 1 {
            let (_, events, path) = files.remove(0);
            total = total.saturating_sub(std::fs::metadata(&path).map_or(0, |m| m.len()));
            std::fs::remove_file(&path)?;
            forgotten += events;
        }
        Ok((file, forgotten))
    }

    /// Removes a delivered (or refused) batch.
    pub(super) fn remove(&self, path: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_come_back_oldest_first_and_the_budget_forgets_the_oldest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spool = Spool::open(dir.path().join("spool"), 250).expect("opens");
        assert_eq!(spool.push(&[1; 100], 3).expect("push").1, 0);
        assert_eq!(spool.push(&[2; 100], 4).expect("push").1, 0);
        assert_eq!(spool.events(), 7);
        // A reopened spool continues the sequence and finds the batches.
        let mut spool = Spool::open(dir.path().join("spool"), 250).expect("reopens");
        assert_eq!(
            spool.oldest().expect("reads").expect("one").body,
            vec![1; 100]
        );
        assert_eq!(spool.push(&[3; 100], 5).expect("push").1, 3, "over budget");
        let oldest = spool.oldest().expect("reads").expect("one");
        assert_eq!((oldest.body[0], oldest.events), (2, 4));
        spool.remove(&oldest.path).expect("removes");
        assert_eq!(spool.events(), 5);
    }
}
