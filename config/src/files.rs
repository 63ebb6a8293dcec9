//! Reading, parsing and writing configuration files, with errors that name the file.
//!
//! Invariants:
//! - Every error is a [`ConfigError`] whose `file` is the role name passed in, and
//!   whose message holds the full path (for I/O) or the line and column (for syntax).
//! - [`write_atomically`] never leaves a half-written file at the destination: it
//!   writes a sibling temporary file, syncs it and renames it into place.

use crate::error::ConfigError;
use serde::de::DeserializeOwned;
use std::fs;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

/// Reads `path` as UTF-8 text; `file` names it in errors.
pub(crate) fn read_text(file: &str, path: &Path) -> Result<String, ConfigError> {
    fs::read_to_string(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => ConfigError::new(file, format!("{} does not exist", path.display())),
        _ => ConfigError::new(file, format!("cannot read {}: {e}", path.display())),
    })
}

/// Writes `text` to `path` through a synced temporary file and a rename.
pub(crate) fn write_atomically(file: &str, path: &Path, text: &str) -> Result<(), ConfigError> {
    let tmp = temporary_sibling(file, path)?;
    let io = |what: &str, e: std::io::Error| ConfigError::new(file, format!("cannot {what} {}: {e}", path.display()));
    let mut f = fs::File::create(&tmp).map_err(|e| io("write", e))?;
    f.write_all(text.as_bytes()).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("sync", e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("replace", e)
    })
}

fn temporary_sibling(file: &str, path: &Path) -> Result<PathBuf, ConfigError> {
    let Some(name) = path.file_name() else {
        return Err(ConfigError::new(file, format!("{} is not a file path", path.display())));
    };
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    Ok(path.with_file_name(tmp_name))
}

/// Turns a serde_json error into a [`ConfigError`] naming `file`, the line and the column.
pub(crate) fn json_error(file: &str, e: &serde_json::Error) -> ConfigError {
    let shown = e.to_string();
    if e.line() == 0 {
        return ConfigError::new(file, shown);
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = shown.strip_suffix(&suffix).unwrap_or(&shown);
    ConfigError::at(file, e.line(), e.column(), message)
}

/// Parses TOML `text`; errors give the line and column of the span the parser reports.
pub(crate) fn parse_toml<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end();
        match e.span() {
            Some(span) => {
                let (line, column) = line_and_column(text, span.start);
                ConfigError::at(file, line, column, message)
            }
            None => ConfigError::new(file, message),
        }
    })
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        assert_eq!(line_and_column("abc", 0), (1, 1));
        assert_eq!(line_and_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_and_column("é=x", 2), (1, 2));
        assert_eq!(line_and_column("ab", 99), (1, 3));
    }

    #[test]
    fn write_atomically_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        write_atomically("x.toml", &path, "one").unwrap();
        write_atomically("x.toml", &path, "two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn read_text_names_the_file_and_path_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.json");
        let e = read_text("nope.json", &path).unwrap_err();
        assert_eq!(e.to_string(), format!("nope.json: {} does not exist", path.display()));
    }
}
