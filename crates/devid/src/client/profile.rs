//! Which server and key a client command uses: `--url`/`DEVID_URL`,
//! `--api-key`/`DEVID_API_KEY` or `--api-key-file`/`DEVID_API_KEY_FILE`, else a named
//! profile of the config file:
//!
//! ```toml
//! default_profile = "prod"
//!
//! [profiles.prod]
//! url = "https://devid.example.com"
//! api_key_file = "/home/me/.config/devid/prod.key"
//!
//! [profiles.local]
//! url = "http://127.0.0.1:8080"
//! api_key = "pat.default.…"
//! ```
//!
//! A key is read, trimmed and sent; it is never printed: messages name the flag, the
//! variable or the file it came from instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use super::{ServerArgs, usage};

pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    url: Option<String>,
    api_key: Option<String>,
    api_key_file: Option<PathBuf>,
}

/// The server and key to use.
pub struct Resolved {
    pub url: String,
    pub key: String,
}

/// The config file's path: `DEVID_CONFIG`, else `$XDG_CONFIG_HOME/devid/config.toml`,
/// else `$HOME/.config/devid/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DEVID_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|p| !p.is_empty()).map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("devid").join("config.toml"))
}

pub fn resolve(args: &ServerArgs) -> Result<Resolved> {
    // Flags or variables that say everything need no config file, even a broken one.
    let complete = args.url.is_some() && (args.api_key.is_some() || args.api_key_file.is_some());
    let profile = if args.profile.is_none() && complete { None } else { chosen_profile(args)? };
    let url = args
        .url
        .clone()
        .or_else(|| profile.as_ref().and_then(|(_, p)| p.url.clone()))
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let key = if let Some(key) = &args.api_key {
        nonblank(key, "--api-key (or DEVID_API_KEY)")?
    } else if let Some(file) = &args.api_key_file {
        key_from_file(file, "--api-key-file (or DEVID_API_KEY_FILE)")?
    } else if let Some((name, profile)) = &profile {
        match (&profile.api_key, &profile.api_key_file) {
            (Some(key), _) => nonblank(key, &format!("api_key of profile `{name}`"))?,
            (None, Some(file)) => key_from_file(file, &format!("api_key_file of profile `{name}`"))?,
            (None, None) => {
                return Err(usage(format!(
                    "Profile `{name}` names no key: add api_key_file (or api_key) to it, or pass --api-key-file."
                )));
            }
        }
    } else {
        return Err(usage(
            "No API key: pass --api-key-file FILE or --api-key KEY, set DEVID_API_KEY_FILE or DEVID_API_KEY, or name a profile with --profile. `devid serve` prints the first admin key; `devid keys create` makes more.",
        ));
    };
    Ok(Resolved { url, key })
}

/// The profile named by `--profile`, else the file's default one, else none. A named
/// profile that does not exist is an error; a missing file without a name is not.
fn chosen_profile(args: &ServerArgs) -> Result<Option<(String, Profile)>> {
    let path = config_path();
    let config = match &path {
        Some(path) if path.exists() => read_config(path)?,
        _ => ConfigFile::default(),
    };
    let (name, explicit) = match (&args.profile, &config.default_profile) {
        (Some(name), _) => (name.clone(), true),
        (None, Some(name)) => (name.clone(), true),
        (None, None) => ("default".to_string(), false),
    };
    match config.profiles.get(&name) {
        Some(profile) => Ok(Some((name, profile.clone()))),
        None if !explicit => Ok(None),
        None => {
            let place =
                path.map(|p| p.display().to_string()).unwrap_or_else(|| "(no config file: HOME is not set)".into());
            let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
            Err(usage(if known.is_empty() {
                format!("There is no profile `{name}`: the config file {place} has no profiles.")
            } else {
                format!("There is no profile `{name}` in {place}; it has {}.", known.join(", "))
            }))
        }
    }
}

fn read_config(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("Cannot read the config file {}: {e}.", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| usage(format!("The config file {} is not valid: {}", path.display(), e.to_string().trim_end())))
}

fn nonblank(key: &str, origin: &str) -> Result<String> {
    let key = key.trim();
    if key.is_empty() {
        return Err(usage(format!("The API key given by {origin} is blank.")));
    }
    Ok(key.to_string())
}

fn key_from_file(path: &Path, origin: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("Cannot read the API key file {} (from {origin}): {e}.", path.display())))?;
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if line.is_empty() {
        return Err(usage(format!("The API key file {} (from {origin}) is empty.", path.display())));
    }
    Ok(line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ConfigFile {
        toml::from_str(text).expect("valid config")
    }

    #[test]
    fn a_config_file_names_profiles_and_a_default() {
        let config = parse(
            "default_profile = \"prod\"\n[profiles.prod]\nurl = \"https://devid.example.com\"\napi_key_file = \"/k\"\n",
        );
        assert_eq!(config.default_profile.as_deref(), Some("prod"));
        let prod = &config.profiles["prod"];
        assert_eq!(prod.url.as_deref(), Some("https://devid.example.com"));
        assert_eq!(prod.api_key_file.as_deref(), Some(Path::new("/k")));
    }

    #[test]
    fn a_misspelt_setting_is_refused_rather_than_ignored() {
        assert!(toml::from_str::<ConfigFile>("[profiles.prod]\napikey = \"x\"\n").is_err());
    }

    #[test]
    fn a_key_file_gives_its_first_line_and_an_empty_one_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("key");
        std::fs::write(&file, "\n  pat.default.abc.def  \nignored\n").expect("write");
        assert_eq!(key_from_file(&file, "test").expect("a key"), "pat.default.abc.def");
        std::fs::write(&file, " \n").expect("write");
        let e = key_from_file(&file, "test").expect_err("empty");
        assert_eq!(super::super::exit_code(&e), 2);
        assert!(!e.to_string().contains("pat."), "a message never shows a key");
    }
}
