//! `application/x-www-form-urlencoded` parameters as OAuth reads them: RFC 6749 §3.1 and §3.2
//! say a parameter MUST NOT be included more than once, and parameters sent without a value
//! MUST be treated as if they were omitted.

use std::collections::HashMap;

/// Parsed form or query parameters with duplicates detected instead of silently merged.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: HashMap<String, String>,
    duplicated: Vec<String>,
}

impl Params {
    pub fn parse(input: &[u8]) -> Self {
        let mut params = Self::default();
        for (key, value) in form_urlencoded::parse(input) {
            if value.is_empty() {
                continue;
            }
            if params.values.contains_key(key.as_ref()) {
                if !params.duplicated.iter().any(|d| d == key.as_ref()) {
                    params.duplicated.push(key.into_owned());
                }
                continue;
            }
            params.values.insert(key.into_owned(), value.into_owned());
        }
        params
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn is_duplicated(&self, key: &str) -> bool {
        self.duplicated.iter().any(|d| d == key)
    }

    /// The first repeated parameter, if any.
    pub fn first_duplicate(&self) -> Option<&str> {
        self.duplicated.first().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_reported_and_empty_values_ignored() {
        let p = Params::parse(b"a=1&b=&a=2&c=x+y%21");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y!"));
        assert!(p.is_duplicated("a"));
        assert_eq!(p.first_duplicate(), Some("a"));
        assert!(!p.is_duplicated("c"));
    }
}
