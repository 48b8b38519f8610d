//! Standard output for the commands. A report piped into `head` loses its
//! reader early; writes after that are dropped quietly, so the command still
//! finishes its work and exits with the report's own code (PASS or FAIL)
//! instead of an error.

use std::io::{BufWriter, ErrorKind, Write};

/// Buffered standard output that stops writing, without failing, once its
/// reader is gone.
pub struct Output {
    inner: BufWriter<std::io::Stdout>,
    reader_gone: bool,
}

impl Output {
    pub fn stdout() -> Self {
        Output {
            inner: BufWriter::new(std::io::stdout()),
            reader_gone: false,
        }
    }

    /// True once the reader closed the pipe: nothing more will be seen.
    pub fn reader_gone(&self) -> bool {
        self.reader_gone
    }

    fn quiet<T>(&mut self, result: std::io::Result<T>, otherwise: T) -> std::io::Result<T> {
        match result {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.reader_gone = true;
                Ok(otherwise)
            }
            other => other,
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.reader_gone {
            return Ok(buf.len());
        }
        let written = self.inner.write(buf);
        self.quiet(written, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.reader_gone {
            return Ok(());
        }
        let flushed = self.inner.flush();
        self.quiet(flushed, ())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
