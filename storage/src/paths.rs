//! Where Flagyard keeps its files by default.

use std::ffi::OsString;
use std::path::PathBuf;

/// `$XDG_DATA_HOME/flagyard`, else `~/.local/share/flagyard`, else `./.flagyard`.
pub fn data_directory() -> PathBuf {
    data_directory_from(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
}

fn data_directory_from(xdg_data_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    if let Some(data) = xdg_data_home.filter(|v| !v.is_empty()) {
        return PathBuf::from(data).join("flagyard");
    }
    if let Some(home) = home.filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/flagyard");
    }
    PathBuf::from(".flagyard")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_xdg_then_home() {
        assert_eq!(
            data_directory_from(Some("/x".into()), Some("/home/a".into())),
            PathBuf::from("/x/flagyard")
        );
        assert_eq!(
            data_directory_from(Some("".into()), Some("/home/a".into())),
            PathBuf::from("/home/a/.local/share/flagyard")
        );
        assert_eq!(data_directory_from(None, None), PathBuf::from(".flagyard"));
    }
}
