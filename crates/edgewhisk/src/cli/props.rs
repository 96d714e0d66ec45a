//! The `.wskprops` file and how the CLI's settings are resolved from it, the environment and
//! the flags (flags > `WHISK_*` environment > file), as `wsk` does; and [`Ctx`], which every
//! command gets: the flags, the file and the resolved settings.

use super::error::CliError;
use super::flags::GlobalFlags;
use edgewhisk_client::Client;
use std::path::{Path, PathBuf};

/// The properties file: `KEY=VALUE` lines, kept in order so a rewrite changes only what was
/// set or unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PropsFile {
    /// Where it lives (`None` when no home directory could be found).
    pub(crate) path: Option<PathBuf>,
    entries: Vec<(String, String)>,
}

impl PropsFile {
    /// Reads `path`, or `~/.wskprops` when `None`. A missing file is an empty one.
    pub(crate) fn load(path: Option<PathBuf>) -> Result<Self, CliError> {
        let path = path.or_else(crate::config::wskprops_path);
        let entries = match &path {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(text) => parse(&text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => {
                    return Err(CliError::Failed(format!(
                        "Unable to read the properties file '{}': {e}",
                        p.display()
                    )));
                }
            },
            None => Vec::new(),
        };
        Ok(Self { path, entries })
    }

    /// The value of `key`, if set and non-empty.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Sets `key`, in place when it exists.
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_owned(),
            None => self.entries.push((key.to_owned(), value.to_owned())),
        }
    }

    /// Removes `key`.
    pub(crate) fn unset(&mut self, key: &str) {
        self.entries.retain(|(k, _)| k != key);
    }

    /// The file's text.
    pub(crate) fn render(&self) -> String {
        self.entries
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect()
    }

    /// Writes the file back.
    pub(crate) fn save(&self) -> Result<(), CliError> {
        let Some(path) = &self.path else {
            return Err(CliError::Failed(
                "Unable to set the property value(s): no home directory; set WSK_CONFIG_FILE"
                    .into(),
            ));
        };
        write(path, &self.render())
            .map_err(|e| CliError::Failed(format!("Unable to set the property value(s): {e}")))
    }
}

/// Writes the file readable by its owner only (0600), as it holds the `AUTH` key: created
/// so, and an existing file made so before the new text goes in.
fn write(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.set_len(0)?;
    file.write_all(text.as_bytes())
}

/// Parses `KEY=VALUE` lines; blank lines and `#` comments are skipped, keys and values are
/// trimmed, and a value may itself contain `=`.
pub(crate) fn parse(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
        match out.iter_mut().find(|(ek, _)| *ek == k) {
            // As in wsk, a later line wins.
            Some(entry) => entry.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// The settings a command runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    /// API host.
    pub(crate) apihost: Option<String>,
    /// `uuid:key`.
    pub(crate) auth: Option<String>,
    /// `NAMESPACE` from the file (shown by `property get`; requests still use `_`).
    pub(crate) namespace: Option<String>,
    /// API version, `v1` by default.
    pub(crate) apiversion: String,
}

impl Settings {
    /// Flags > environment > file.
    pub(crate) fn resolve(file: &PropsFile, flags: &GlobalFlags) -> Self {
        let pick = |flag: &Option<String>, env: &Option<String>, key: &str| {
            non_empty(flag)
                .or_else(|| non_empty(env))
                .or_else(|| file.get(key).map(str::to_owned))
        };
        Self {
            apihost: pick(&flags.apihost, &flags.env_apihost, "APIHOST"),
            auth: pick(&flags.auth, &flags.env_auth, "AUTH"),
            namespace: file.get("NAMESPACE").map(str::to_owned),
            apiversion: file.get("APIVERSION").unwrap_or("v1").to_owned(),
        }
    }
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// What every command needs: the flags, the properties file and the resolved settings.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) global: GlobalFlags,
    pub(crate) props: PropsFile,
    pub(crate) settings: Settings,
}

impl Ctx {
    pub(crate) fn load(global: GlobalFlags) -> Result<Self, CliError> {
        let props = PropsFile::load(global.config_file.clone())?;
        let settings = Settings::resolve(&props, &global);
        Ok(Self {
            global,
            props,
            settings,
        })
    }

    /// A client for the configured host and key, addressing namespace `_`.
    pub(crate) fn client(&self) -> Result<Client, CliError> {
        let Some(host) = self.settings.apihost.as_deref() else {
            return Err(CliError::Failed(
                "The API host is not valid: An API host must be provided.".into(),
            ));
        };
        if self.global.verbose {
            eprintln!("REQUEST: API host {host}");
        }
        Client::new(
            host,
            self.settings.auth.as_deref().unwrap_or(""),
            self.global.insecure,
        )
        .map_err(|e| CliError::Failed(format!("The API host is not valid: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> PropsFile {
        PropsFile {
            path: None,
            entries: parse(text),
        }
    }

    #[test]
    fn parses_key_value_lines_and_skips_comments_and_blanks() {
        let f = file("# comment\n\nAPIHOST = http://h:3233\nAUTH=a:b=c\nJUNK\nNAMESPACE=\n");
        assert_eq!(f.get("APIHOST"), Some("http://h:3233"));
        assert_eq!(f.get("AUTH"), Some("a:b=c"));
        assert_eq!(f.get("NAMESPACE"), None);
        assert_eq!(f.get("JUNK"), None);
    }

    #[test]
    fn later_lines_win() {
        assert_eq!(file("AUTH=x\nAUTH=y\n").get("AUTH"), Some("y"));
    }

    #[test]
    fn flags_override_environment_which_overrides_the_file() {
        let f = file("APIHOST=file-host\nAUTH=file:auth\nNAMESPACE=guest\n");
        let mut flags = GlobalFlags::default();
        let s = Settings::resolve(&f, &flags);
        assert_eq!(s.apihost.as_deref(), Some("file-host"));
        assert_eq!(s.namespace.as_deref(), Some("guest"));
        assert_eq!(s.apiversion, "v1");

        flags.env_apihost = Some("env-host".into());
        flags.env_auth = Some("env:auth".into());
        let s = Settings::resolve(&f, &flags);
        assert_eq!(s.apihost.as_deref(), Some("env-host"));
        assert_eq!(s.auth.as_deref(), Some("env:auth"));

        flags.apihost = Some("flag-host".into());
        flags.auth = Some(String::new()); // `--auth` without a value overrides nothing
        let s = Settings::resolve(&f, &flags);
        assert_eq!(s.apihost.as_deref(), Some("flag-host"));
        assert_eq!(s.auth.as_deref(), Some("env:auth"));
    }

    #[test]
    fn set_and_unset_rewrite_only_their_key_and_keep_order() {
        let mut f = file("APIHOST=a\nAUTH=b\n");
        f.set("APIHOST", "c");
        f.set("NAMESPACE", "guest");
        assert_eq!(f.render(), "APIHOST=c\nAUTH=b\nNAMESPACE=guest\n");
        f.unset("AUTH");
        assert_eq!(f.render(), "APIHOST=c\nNAMESPACE=guest\n");
    }

    #[test]
    fn a_missing_file_is_empty_and_saving_creates_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("props");
        let mut f = PropsFile::load(Some(path.clone())).unwrap();
        assert_eq!(f.get("APIHOST"), None);
        f.set("AUTH", "u:k");
        f.save().unwrap();
        let again = PropsFile::load(Some(path)).unwrap();
        assert_eq!(again.get("AUTH"), Some("u:k"));
    }
}
