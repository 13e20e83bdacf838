//! A stub Elastic Beanstalk for what moto does not serve (storage location,
//! application versions, environment updates, events): it answers the
//! service's query protocol with the XML shapes of its API model, keeps
//! applications, environments, versions and events, and plays a scripted
//! update after UpdateEnvironment, one step per DescribeEnvironments.
//! Every other request (S3) goes on to moto.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::{HttpServer, Request, Response};

/// One step of an environment update, shown at one DescribeEnvironments:
/// events that happened by then (severity, message), and the state.
#[derive(Debug, Clone)]
pub struct Step {
    pub events: Vec<(&'static str, &'static str)>,
    pub status: &'static str,
    pub health: &'static str,
    /// The version the environment runs from this step on (`None`: the
    /// version asked for).
    pub version: Option<&'static str>,
}

impl Step {
    pub fn new(status: &'static str, health: &'static str) -> Self {
        Step {
            events: Vec::new(),
            status,
            health,
            version: None,
        }
    }
    pub fn event(mut self, severity: &'static str, message: &'static str) -> Self {
        self.events.push((severity, message));
        self
    }
    pub fn running(mut self, version: &'static str) -> Self {
        self.version = Some(version);
        self
    }
}

#[derive(Default)]
struct Env {
    app: String,
    status: String,
    health: String,
    version: String,
}

#[derive(Default)]
struct State {
    apps: Vec<String>,
    envs: BTreeMap<String, Env>,
    /// (application, label) → (bucket, key, description)
    versions: BTreeMap<(String, String), (String, String, String)>,
    /// (seconds since 1970, severity, message, environment)
    events: Vec<(i64, String, String, String)>,
    clock: i64,
    script: Vec<Step>,
    /// The update in progress: (environment, asked version, next step).
    update: Option<(String, String, usize)>,
    aborted: bool,
}

pub struct Beanstalk {
    pub server: HttpServer,
    pub bucket: String,
    state: Arc<Mutex<State>>,
}

impl Beanstalk {
    /// A stub whose storage bucket is `bucket` (create it in moto), with an
    /// application `app` and its environment `env` (Ready, Green, running
    /// version `initial`), and `script` played after UpdateEnvironment.
    pub fn start(bucket: &str, app: &str, env: &str, script: Vec<Step>) -> Self {
        let state = Arc::new(Mutex::new(State {
            apps: vec![app.to_string()],
            clock: 1_796_000_000,
            script,
            ..Default::default()
        }));
        {
            let mut s = state.lock().unwrap();
            s.envs.insert(
                env.to_string(),
                Env {
                    app: app.into(),
                    status: "Ready".into(),
                    health: "Green".into(),
                    version: "initial".into(),
                },
            );
            let t = s.clock;
            s.events.push((
                t,
                "INFO".into(),
                "Environment update completed successfully.".into(),
                env.into(),
            ));
        }
        let moto = crate::moto();
        let bucket_name = bucket.to_string();
        let shared = state.clone();
        let server = HttpServer::start(move |req| match req.form("Action") {
            Some(action) if req.form("Version").as_deref() == Some("2010-12-01") => {
                answer(&shared, &bucket_name, &action, req)
            }
            _ => crate::forward_to(&moto, req),
        });
        Beanstalk {
            server,
            bucket: bucket.to_string(),
            state,
        }
    }

    /// The version `label` of `app`: (bucket, key, description).
    pub fn version(&self, app: &str, label: &str) -> Option<(String, String, String)> {
        self.state
            .lock()
            .unwrap()
            .versions
            .get(&(app.to_string(), label.to_string()))
            .cloned()
    }

    /// Adds an existing version.
    pub fn add_version(&self, app: &str, label: &str) {
        self.state.lock().unwrap().versions.insert(
            (app.into(), label.into()),
            ("b".into(), "k".into(), String::new()),
        );
    }

    pub fn aborted(&self) -> bool {
        self.state.lock().unwrap().aborted
    }

    pub fn calls(&self, action: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.form("Action").as_deref() == Some(action))
            .count()
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ok(action: &str, result: &str) -> Response {
    Response::new(
        200,
        format!(
            "<{action}Response xmlns=\"http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
    .header("Content-Type", "text/xml")
}

fn error(code: &str, message: &str) -> Response {
    Response::new(
        400,
        format!(
            "<ErrorResponse xmlns=\"http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>stub</RequestId></ErrorResponse>",
            xml(message)
        ),
    )
    .header("Content-Type", "text/xml")
}

fn date(secs: i64) -> String {
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn answer(state: &Mutex<State>, bucket: &str, action: &str, req: &Request) -> Response {
    let mut s = state.lock().unwrap();
    let form = |k: &str| req.form(k).unwrap_or_default();
    match action {
        "DescribeApplications" => {
            let wanted = form("ApplicationNames.member.1");
            let members: String = s
                .apps
                .iter()
                .filter(|a| wanted.is_empty() || **a == wanted)
                .map(|a| {
                    format!(
                        "<member><ApplicationName>{}</ApplicationName></member>",
                        xml(a)
                    )
                })
                .collect();
            ok(action, &format!("<Applications>{members}</Applications>"))
        }
        "DescribeEnvironments" => {
            let wanted = form("EnvironmentNames.member.1");
            // A scripted update advances one step per look.
            if let Some((env, asked, step)) = s.update.clone()
                && (wanted.is_empty() || wanted == env)
            {
                if s.aborted {
                    let e = s.envs.get_mut(&env).unwrap();
                    e.status = "Ready".into();
                    s.update = None;
                } else if let Some(st) = s.script.get(step).cloned() {
                    for (severity, message) in &st.events {
                        s.clock += 1;
                        let t = s.clock;
                        s.events
                            .push((t, severity.to_string(), message.to_string(), env.clone()));
                    }
                    let e = s.envs.get_mut(&env).unwrap();
                    e.status = st.status.into();
                    e.health = st.health.into();
                    e.version = st.version.map(str::to_string).unwrap_or(asked.clone());
                    s.update = Some((env, asked, step + 1));
                }
            }
            let members: String = s
                .envs
                .iter()
                .filter(|(n, _)| wanted.is_empty() || **n == wanted)
                .map(|(n, e)| {
                    format!(
                        "<member><EnvironmentName>{}</EnvironmentName><ApplicationName>{}</ApplicationName><VersionLabel>{}</VersionLabel><Status>{}</Status><Health>{}</Health></member>",
                        xml(n),
                        xml(&e.app),
                        xml(&e.version),
                        e.status,
                        e.health
                    )
                })
                .collect();
            ok(action, &format!("<Environments>{members}</Environments>"))
        }
        "CreateStorageLocation" => ok(action, &format!("<S3Bucket>{}</S3Bucket>", xml(bucket))),
        "CreateApplicationVersion" => {
            let key = (form("ApplicationName"), form("VersionLabel"));
            if s.versions.contains_key(&key) {
                return error(
                    "InvalidParameterValue",
                    &format!("Application Version {} already exists.", key.1),
                );
            }
            let value = (
                form("SourceBundle.S3Bucket"),
                form("SourceBundle.S3Key"),
                form("Description"),
            );
            s.versions.insert(key.clone(), value.clone());
            ok(
                action,
                &format!(
                    "<ApplicationVersion><ApplicationName>{}</ApplicationName><VersionLabel>{}</VersionLabel><SourceBundle><S3Bucket>{}</S3Bucket><S3Key>{}</S3Key></SourceBundle><Status>UNPROCESSED</Status></ApplicationVersion>",
                    xml(&key.0),
                    xml(&key.1),
                    xml(&value.0),
                    xml(&value.1)
                ),
            )
        }
        "DescribeApplicationVersions" => {
            let app = form("ApplicationName");
            let label = form("VersionLabels.member.1");
            let members: String = s
                .versions
                .iter()
                .filter(|((a, l), _)| *a == app && (label.is_empty() || *l == label))
                .map(|((a, l), (bucket, key, _))| {
                    format!(
                        "<member><ApplicationName>{}</ApplicationName><VersionLabel>{}</VersionLabel><SourceBundle><S3Bucket>{}</S3Bucket><S3Key>{}</S3Key></SourceBundle></member>",
                        xml(a),
                        xml(l),
                        xml(bucket),
                        xml(key)
                    )
                })
                .collect();
            ok(
                action,
                &format!("<ApplicationVersions>{members}</ApplicationVersions>"),
            )
        }
        "UpdateEnvironment" => {
            let env = form("EnvironmentName");
            let label = form("VersionLabel");
            if !s
                .versions
                .contains_key(&(form("ApplicationName"), label.clone()))
            {
                return error(
                    "InvalidParameterValue",
                    &format!("No Application Version named '{label}' found."),
                );
            }
            s.update = Some((env.clone(), label, 0));
            if let Some(e) = s.envs.get_mut(&env) {
                e.status = "Updating".into();
            }
            ok(
                action,
                &format!(
                    "<EnvironmentName>{}</EnvironmentName><Status>Updating</Status>",
                    xml(&env)
                ),
            )
        }
        "AbortEnvironmentUpdate" => {
            s.aborted = true;
            ok(action, "")
        }
        "DescribeEvents" => {
            let env = form("EnvironmentName");
            let max: usize = form("MaxRecords").parse().unwrap_or(1000);
            let mut events: Vec<_> = s.events.iter().filter(|e| e.3 == env).collect();
            // Newest first, as the service answers.
            events.sort_by_key(|e| std::cmp::Reverse(e.0));
            let members: String = events
                .iter()
                .take(max)
                .map(|(t, severity, message, env)| {
                    format!(
                        "<member><EventDate>{}</EventDate><Severity>{severity}</Severity><Message>{}</Message><EnvironmentName>{}</EnvironmentName></member>",
                        date(*t),
                        xml(message),
                        xml(env)
                    )
                })
                .collect();
            ok(action, &format!("<Events>{members}</Events>"))
        }
        other => error(
            "InvalidAction",
            &format!("{other} is not served by the stub"),
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_iso_8601() {
        assert_eq!(super::date(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::date(1_796_000_000), "2026-11-30T00:53:20.000Z");
    }
}
