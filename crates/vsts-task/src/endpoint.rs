//! Service connections: `ENDPOINT_URL_/ENDPOINT_AUTH_/ENDPOINT_AUTH_SCHEME_/
//! ENDPOINT_AUTH_PARAMETER_/ENDPOINT_DATA_` + the connection's GUID.

use std::collections::BTreeMap;

use crate::env::{Env, env_name};

/// One service connection as the agent passed it. Keys of the parameter and
/// data maps are upper-cased, as in the per-key environment variables.
#[derive(Clone)]
pub struct Endpoint {
    pub id: String,
    pub url: Option<String>,
    pub scheme: Option<String>,
    params: BTreeMap<String, String>,
    data: BTreeMap<String, String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("scheme", &self.scheme)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Endpoint {
    /// An authorization parameter (`username`, `password`, ...), when not blank.
    pub fn auth_param(&self, key: &str) -> Option<&str> {
        self.params
            .get(&env_name(key))
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// A data field of the connection type, when not blank.
    pub fn data(&self, key: &str) -> Option<&str> {
        self.data
            .get(&env_name(key))
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Looks a connection up by GUID: exact names first, then
    /// case-insensitively. `None` when the agent passed nothing for it.
    pub fn from_env(env: &Env, id: &str) -> Option<Endpoint> {
        let url = env.get(&format!("ENDPOINT_URL_{id}")).map(str::to_string);
        let scheme = env
            .get(&format!("ENDPOINT_AUTH_SCHEME_{id}"))
            .map(str::to_string);
        let mut params = BTreeMap::new();
        let mut scheme_from_json = None;
        if let Some(json) = env.get(&format!("ENDPOINT_AUTH_{id}"))
            && let Ok(serde_json::Value::Object(auth)) = serde_json::from_str(json)
        {
            if let Some(serde_json::Value::Object(p)) = auth.get("parameters") {
                params.extend(string_fields(p));
            }
            scheme_from_json = auth
                .get("scheme")
                .and_then(|s| s.as_str())
                .map(str::to_string);
        }
        // The per-key variables win over the JSON blob: they are what
        // task-lib reads.
        let param_prefix = format!("ENDPOINT_AUTH_PARAMETER_{id}_");
        for (k, v) in env.with_prefix(&param_prefix) {
            params.insert(k.to_uppercase(), v.to_string());
        }
        let mut data = BTreeMap::new();
        if let Some(json) = env.get(&format!("ENDPOINT_DATA_{id}"))
            && let Ok(serde_json::Value::Object(d)) = serde_json::from_str(json)
        {
            data.extend(string_fields(&d));
        }
        let data_prefix = format!("ENDPOINT_DATA_{id}_");
        for (k, v) in env.with_prefix(&data_prefix) {
            data.insert(k.to_uppercase(), v.to_string());
        }
        let scheme = scheme.or(scheme_from_json);
        if url.is_none() && scheme.is_none() && params.is_empty() && data.is_empty() {
            return None;
        }
        Some(Endpoint {
            id: id.to_string(),
            url,
            scheme,
            params,
            data,
        })
    }
}

/// The string fields of a JSON object, keys in environment format.
fn string_fields(
    map: &serde_json::Map<String, serde_json::Value>,
) -> impl Iterator<Item = (String, String)> + '_ {
    map.iter()
        .filter_map(|(k, v)| Some((env_name(k), v.as_str()?.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2c1a00-0000-4000-8000-00000000abcd";

    #[test]
    fn reads_parameters_from_json_and_per_key_variables() {
        let env = Env::from_pairs([
            (format!("ENDPOINT_URL_{ID}"), "https://aws.amazon.com/".to_string()),
            (
                format!("ENDPOINT_AUTH_{ID}"),
                r#"{"parameters":{"username":"AKID","assumeRoleArn":"arn:r"},"scheme":"UsernamePassword"}"#.to_string(),
            ),
            (format!("ENDPOINT_AUTH_PARAMETER_{ID}_PASSWORD"), "secret".to_string()),
            (format!("ENDPOINT_DATA_{ID}_ENDPOINTURL"), "http://127.0.0.1:1".to_string()),
        ]);
        let e = Endpoint::from_env(&env, ID).unwrap();
        assert_eq!(e.auth_param("username"), Some("AKID"));
        assert_eq!(e.auth_param("assumeRoleArn"), Some("arn:r"));
        assert_eq!(e.auth_param("password"), Some("secret"));
        assert_eq!(e.data("endpointUrl"), Some("http://127.0.0.1:1"));
        assert_eq!(e.scheme.as_deref(), Some("UsernamePassword"));
        assert!(!format!("{e:?}").contains("secret\""));
    }

    #[test]
    fn lookup_falls_back_to_case_insensitive() {
        let env = Env::from_pairs([(
            format!("ENDPOINT_AUTH_PARAMETER_{}_USERNAME", ID.to_uppercase()),
            "AKID",
        )]);
        assert_eq!(
            Endpoint::from_env(&env, ID).unwrap().auth_param("username"),
            Some("AKID")
        );
        assert!(Endpoint::from_env(&env, "other").is_none());
    }
}
