//! The configuration pattern both servers follow: defaults, then an optional TOML file, then
//! environment variables; errors name the file or variable and the value that is wrong.

use std::path::Path;

use serde::de::DeserializeOwned;

/// The file's settings over the defaults, or the defaults when there is no file.
pub fn read_file<T: DeserializeOwned + Default>(path: Option<&Path>) -> anyhow::Result<T> {
    let Some(p) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(p)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

/// Parses an environment variable's value, naming it when it is not valid.
pub fn parse_var<T: std::str::FromStr>(key: &str, value: String) -> anyhow::Result<T> {
    value
        .parse()
        .map_err(|_| anyhow::anyhow!("{key}={value:?} is not a valid value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Example {
        port: u16,
    }

    #[test]
    fn file_and_variable_errors_say_what_is_wrong() {
        assert_eq!(read_file::<Example>(None).unwrap(), Example::default());
        let dir = std::env::temp_dir().join(format!("settings-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "port = 8001\n").unwrap();
        assert_eq!(
            read_file::<Example>(Some(&file)).unwrap(),
            Example { port: 8001 }
        );
        std::fs::write(&file, "prot = 1\n").unwrap();
        assert!(
            read_file::<Example>(Some(&file))
                .unwrap_err()
                .to_string()
                .contains("c.toml")
        );
        assert!(
            read_file::<Example>(Some(&dir.join("missing.toml")))
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
        assert_eq!(parse_var::<u16>("X", "80".into()).unwrap(), 80);
        assert_eq!(
            parse_var::<u16>("X", "eighty".into())
                .unwrap_err()
                .to_string(),
            r#"X="eighty" is not a valid value"#
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
