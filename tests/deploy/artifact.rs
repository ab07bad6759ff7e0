//! The Lambda artifact: `scripts/zip-bootstrap` packs a binary as `bootstrap` (what
//! `cargo lambda build --output-format zip` writes), and [`entries`] reads a zip's central
//! directory to check its layout.
//!
//! The reader is hand-written (about 50 lines) because the crate has no zip dependency and only
//! the central directory's names, sizes and Unix modes are needed, not decompression.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

use super::tools::repo;

/// Zips `binary` as `out` with `scripts/zip-bootstrap`; `level` 0 stores without compressing
/// (the debug binary the tests have is large; compression is not what is under test).
pub fn zip_bootstrap(binary: &Path, out: &Path, level: u32) {
    let output = Command::new("bash")
        .arg(repo().join("scripts/zip-bootstrap"))
        .arg(binary)
        .arg(out)
        .env("ZIP_LEVEL", level.to_string())
        .output()
        .expect("run scripts/zip-bootstrap");
    assert!(
        output.status.success(),
        "scripts/zip-bootstrap failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// Unix file mode (type and permission bits) when the entry was made on Unix.
    pub unix_mode: Option<u32>,
    pub size: u64,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;

fn u16_at(b: &[u8], i: usize) -> Result<u16, String> {
    b.get(i..i + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| "truncated zip".to_string())
}

fn u32_at(b: &[u8], i: usize) -> Result<u32, String> {
    b.get(i..i + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "truncated zip".to_string())
}

/// The entries of the zip at `path`, from its central directory.
pub fn entries(path: &Path) -> Result<Vec<Entry>, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    // The end-of-central-directory record is in the last 22 + 65,535 (comment) bytes.
    let tail_len = len.min(22 + 65_535);
    let mut tail = vec![0; tail_len as usize];
    file.seek(SeekFrom::Start(len - tail_len))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(|e| e.to_string())?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i) == Ok(EOCD_SIG))
        .ok_or("no end-of-central-directory record: not a zip")?;
    let count = u16_at(&tail, eocd + 10)? as usize;
    let cd_size = u32_at(&tail, eocd + 12)? as usize;
    let cd_offset = u32_at(&tail, eocd + 16)? as u64;
    let mut cd = vec![0; cd_size];
    file.seek(SeekFrom::Start(cd_offset))
        .and_then(|_| file.read_exact(&mut cd))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(count);
    let mut i = 0;
    for _ in 0..count {
        if u32_at(&cd, i)? != CENTRAL_SIG {
            return Err(format!("bad central directory entry at {i}"));
        }
        let made_on_unix = cd.get(i + 5) == Some(&3);
        let size = u32_at(&cd, i + 24)? as u64;
        let name_len = u16_at(&cd, i + 28)? as usize;
        let extra_len = u16_at(&cd, i + 30)? as usize;
        let comment_len = u16_at(&cd, i + 32)? as usize;
        let external = u32_at(&cd, i + 38)?;
        let name = cd.get(i + 46..i + 46 + name_len).ok_or("truncated zip")?;
        out.push(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            unix_mode: made_on_unix.then_some(external >> 16),
            size,
        });
        i += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}

/// Problems with a Lambda custom-runtime artifact: exactly one entry, `bootstrap` at the root,
/// a regular file executable by everyone (mode 0755), `expected_size` bytes.
pub fn check_lambda_zip(entries: &[Entry], expected_size: u64) -> Vec<String> {
    let mut problems = Vec::new();
    match entries {
        [e] => {
            if e.name != "bootstrap" {
                problems.push(format!(
                    "the entry is {:?}, not bootstrap at the root",
                    e.name
                ));
            }
            match e.unix_mode {
                Some(mode) if mode & 0o170_000 == 0o100_000 && mode & 0o777 == 0o755 => {}
                other => problems.push(format!(
                    "bootstrap mode {:?} is not a regular file with mode 0755",
                    other.map(|m| format!("{m:o}"))
                )),
            }
            if e.size != expected_size {
                problems.push(format!(
                    "bootstrap is {} bytes, the binary {expected_size}",
                    e.size
                ));
            }
        }
        _ => problems.push(format!(
            "the zip holds {} entries, Lambda needs only bootstrap: {entries:?}",
            entries.len()
        )),
    }
    problems
}
