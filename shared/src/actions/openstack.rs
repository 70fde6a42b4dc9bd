//! OpenStack actions: one generic request path over the target cloud's
//! service catalog (`openstack.request`), and a table of named actions over
//! it, with Mistral's names where they exist.
//!
//! Every run builds its clients fresh, for this action only, from the
//! execution's target (unsealed by run-task and dropped when the action
//! ends): nothing about a target is cached across executions or tasks. When
//! the execution carries a service catalog (`X-Target-Service-Catalog`) the
//! action makes no Keystone call; otherwise exactly one (token validation,
//! which returns the catalog). Every URL used (Keystone and the service
//! endpoint) passes the outbound policy first.

use super::{
    Action, ActionContext, ActionFuture, ActionImpl, ActionInfo, ActionOutcome, ActionRegistry,
};
use crate::target::catalog::Catalog;
use crate::target::keystone::{KeystoneClient, target_client, transport_error};
use crate::target::policy::display_url;
use crate::workflow::InputParam;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use url::Url;

/// Keystone token validations made by OpenStack actions in this process
/// (the benchmark reports Keystone requests per task from it).
pub static KEYSTONE_CALLS: AtomicU64 = AtomicU64::new(0);

/// The longest service error text kept in a task's error.
const MAX_ERROR_TEXT: usize = 1000;

/// One named action: a method and path on a service of the catalog.
struct Named {
    name: &'static str,
    service_type: &'static str,
    method: &'static str,
    /// Appended to the endpoint URL; `{param}` are filled from the input.
    path: &'static str,
    /// For create calls: the input parameter sent as the JSON body, wrapped
    /// in an object under the same name (`{"server": {...}}`).
    body: Option<&'static str>,
    description: &'static str,
}

const fn get(
    name: &'static str,
    service_type: &'static str,
    path: &'static str,
    description: &'static str,
) -> Named {
    Named {
        name,
        service_type,
        method: "GET",
        path,
        body: None,
        description,
    }
}

/// The table. Paths are relative to the catalog endpoint's URL, which for
/// `identity` already ends in `/v3`, for `volumev3` in `/v3/{project}`, and
/// for `object-store` in the account (`/v1/AUTH_{project}`).
const TABLE: &[Named] = &[
    get(
        "keystone.projects_list",
        "identity",
        "/projects",
        "List projects (needs a reader role on the domain or cloud; see keystone.auth_projects).",
    ),
    get(
        "keystone.projects_get",
        "identity",
        "/projects/{project_id}",
        "Show a project.",
    ),
    get(
        "keystone.auth_projects",
        "identity",
        "/auth/projects",
        "Projects the token's user can scope to (works for a plain member).",
    ),
    get("keystone.users_list", "identity", "/users", "List users."),
    get("keystone.roles_list", "identity", "/roles", "List roles."),
    get(
        "keystone.regions_list",
        "identity",
        "/regions",
        "List regions.",
    ),
    get(
        "keystone.services_list",
        "identity",
        "/services",
        "List services.",
    ),
    get(
        "keystone.endpoints_list",
        "identity",
        "/endpoints",
        "List endpoints.",
    ),
    get(
        "nova.servers_list",
        "compute",
        "/servers/detail",
        "List servers with details.",
    ),
    get(
        "nova.servers_get",
        "compute",
        "/servers/{server_id}",
        "Show a server.",
    ),
    Named {
        name: "nova.servers_create",
        service_type: "compute",
        method: "POST",
        path: "/servers",
        body: Some("server"),
        description: "Create a server: server = {name, imageRef, flavorRef, networks, ...}.",
    },
    Named {
        name: "nova.servers_delete",
        service_type: "compute",
        method: "DELETE",
        path: "/servers/{server_id}",
        body: None,
        description: "Delete a server.",
    },
    get(
        "nova.flavors_list",
        "compute",
        "/flavors/detail",
        "List flavors with details.",
    ),
    get(
        "nova.keypairs_list",
        "compute",
        "/os-keypairs",
        "List key pairs.",
    ),
    get("glance.images_list", "image", "/v2/images", "List images."),
    get(
        "glance.images_get",
        "image",
        "/v2/images/{image_id}",
        "Show an image.",
    ),
    get(
        "neutron.list_networks",
        "network",
        "/v2.0/networks",
        "List networks.",
    ),
    get(
        "neutron.list_subnets",
        "network",
        "/v2.0/subnets",
        "List subnets.",
    ),
    get(
        "neutron.list_ports",
        "network",
        "/v2.0/ports",
        "List ports.",
    ),
    Named {
        name: "neutron.create_network",
        service_type: "network",
        method: "POST",
        path: "/v2.0/networks",
        body: Some("network"),
        description: "Create a network: network = {name, admin_state_up, ...}.",
    },
    Named {
        name: "neutron.delete_network",
        service_type: "network",
        method: "DELETE",
        path: "/v2.0/networks/{network_id}",
        body: None,
        description: "Delete a network.",
    },
    get(
        "cinder.volumes_list",
        "volumev3",
        "/volumes/detail",
        "List volumes with details.",
    ),
    get(
        "cinder.volumes_get",
        "volumev3",
        "/volumes/{volume_id}",
        "Show a volume.",
    ),
    Named {
        name: "cinder.volumes_create",
        service_type: "volumev3",
        method: "POST",
        path: "/volumes",
        body: Some("volume"),
        description: "Create a volume: volume = {size, name, ...}.",
    },
    Named {
        name: "cinder.volumes_delete",
        service_type: "volumev3",
        method: "DELETE",
        path: "/volumes/{volume_id}",
        body: None,
        description: "Delete a volume.",
    },
    get(
        "heat.stacks_list",
        "orchestration",
        "/stacks",
        "List stacks.",
    ),
    get(
        "heat.stacks_get",
        "orchestration",
        "/stacks/{stack_id}",
        "Show a stack.",
    ),
    Named {
        name: "heat.stacks_create",
        service_type: "orchestration",
        method: "POST",
        path: "/stacks",
        body: Some("stack"),
        description: "Create a stack: stack = {stack_name, template, parameters, ...} (sent as the body).",
    },
    Named {
        name: "heat.stacks_delete",
        service_type: "orchestration",
        method: "DELETE",
        path: "/stacks/{stack_id}",
        body: None,
        description: "Delete a stack.",
    },
    get(
        "swift.get_account",
        "object-store",
        "",
        "List the account's containers.",
    ),
    get(
        "swift.get_container",
        "object-store",
        "/{container}",
        "List a container's objects.",
    ),
    Named {
        name: "swift.put_object",
        service_type: "object-store",
        method: "PUT",
        path: "/{container}/{obj}",
        body: Some("contents"),
        description: "Upload an object: contents is sent as the body (text, or JSON for other values).",
    },
    get(
        "swift.get_object",
        "object-store",
        "/{container}/{obj}",
        "Download an object.",
    ),
];

fn param(name: &str, default: Option<Value>) -> InputParam {
    InputParam {
        name: name.to_string(),
        default,
    }
}

/// Parameters every OpenStack action takes besides its own.
fn common_params() -> Vec<InputParam> {
    vec![
        param("query", Some(Value::Null)),
        param("headers", Some(Value::Null)),
        param("microversion", Some(Value::Null)),
        param("interface", Some(json!("public"))),
        param("action_region", Some(Value::Null)),
    ]
}

/// Names of `{placeholders}` in a path.
fn placeholders(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

/// Add `openstack.request` and the named actions to a registry.
pub fn register(registry: &mut ActionRegistry) {
    let mut generic = vec![
        param("service_type", None),
        param("method", Some(json!("GET"))),
        param("path", Some(json!(""))),
        param("body", Some(Value::Null)),
        param("region", Some(Value::Null)),
    ];
    generic.extend(common_params());
    registry.register_cloud(
        ActionInfo {
            name: "openstack.request".into(),
            description: "A request to any service of the target cloud's catalog: \
                          service_type, method, path (appended to the endpoint URL), query, body, \
                          headers, microversion, interface, region."
                .into(),
            input: generic,
            is_async: false,
        },
        ActionImpl::Dyn(Arc::new(OpenStackAction { named: None })),
    );
    for (index, named) in TABLE.iter().enumerate() {
        let mut input: Vec<InputParam> = placeholders(named.path)
            .into_iter()
            .map(|p| param(p, None))
            .collect();
        if let Some(body) = named.body {
            input.push(param(body, None));
        }
        input.extend(common_params());
        registry.register_cloud(
            ActionInfo {
                name: named.name.into(),
                description: named.description.into(),
                input,
                is_async: false,
            },
            ActionImpl::Dyn(Arc::new(OpenStackAction { named: Some(index) })),
        );
    }
}

/// `openstack.request` (`named: None`) or one entry of the table.
struct OpenStackAction {
    named: Option<usize>,
}

/// A request to make, from an action's input.
struct Call {
    service_type: String,
    method: reqwest::Method,
    path: String,
    body: Option<Value>,
    region: Option<String>,
}

fn string(input: &Map<String, Value>, key: &str) -> Option<String> {
    match input.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

impl OpenStackAction {
    fn call(&self, input: &Map<String, Value>) -> Result<Call, String> {
        let region = string(input, "action_region").or_else(|| string(input, "region"));
        match self.named.and_then(|i| TABLE.get(i)) {
            None => {
                let service_type = string(input, "service_type")
                    .filter(|s| !s.is_empty())
                    .ok_or("openstack.request: service_type is required")?;
                let method = string(input, "method").unwrap_or_else(|| "GET".into());
                let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("openstack.request: '{method}' is not an HTTP method"))?;
                Ok(Call {
                    service_type,
                    method,
                    path: string(input, "path").unwrap_or_default(),
                    body: input.get("body").filter(|b| !b.is_null()).cloned(),
                    region,
                })
            }
            Some(named) => {
                let mut path = named.path.to_string();
                for name in placeholders(named.path) {
                    let value = string(input, name)
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| format!("{}: {name} is required", named.name))?;
                    let encoded: String =
                        url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
                    path = path.replace(&format!("{{{name}}}"), &encoded);
                }
                let body = named.body.and_then(|key| {
                    let value = input.get(key)?.clone();
                    Some(match key {
                        // Heat and Swift take the value itself as the body.
                        "stack" | "contents" => value,
                        _ => json!({ key: value }),
                    })
                });
                Ok(Call {
                    service_type: named.service_type.to_string(),
                    method: reqwest::Method::from_bytes(named.method.as_bytes())
                        .unwrap_or(reqwest::Method::GET),
                    path,
                    body,
                    region,
                })
            }
        }
    }
}

impl Action for OpenStackAction {
    fn run<'a>(
        &'a self,
        input: &'a Map<String, Value>,
        ctx: &'a ActionContext,
    ) -> ActionFuture<'a> {
        Box::pin(async move {
            match self.run_call(input, ctx).await {
                Ok(outcome) => outcome,
                Err(message) => ActionOutcome::Error(Value::String(message)),
            }
        })
    }
}

impl OpenStackAction {
    async fn run_call(
        &self,
        input: &Map<String, Value>,
        ctx: &ActionContext,
    ) -> Result<ActionOutcome, String> {
        let call = self.call(input)?;
        let target = ctx.target.as_ref().ok_or(
            "this execution has no target cloud: create it with the X-Target-Auth-Uri and \
             X-Target-Auth-Token headers (or params.target), or configure a home cloud \
             (BORA_HOME_AUTH_URL) and pass X-Auth-Token",
        )?;
        let catalog = match &target.catalog {
            Some(catalog) => Catalog::from_value(catalog).map_err(|e| e.to_string())?,
            None => {
                let keystone = KeystoneClient::for_target(target, &ctx.policy)
                    .await
                    .map_err(|e| e.to_string())?;
                KEYSTONE_CALLS.fetch_add(1, Ordering::Relaxed);
                keystone
                    .validate_token(&target.token)
                    .await
                    .map_err(|e| e.to_string())?
                    .catalog
            }
        };
        let interface = string(input, "interface").unwrap_or_else(|| "public".into());
        let region = call.region.clone().or_else(|| target.region.clone());
        let endpoint = catalog
            .endpoint(&call.service_type, &interface, region.as_deref())
            .map_err(|e| e.to_string())?;
        let mut url = join(&endpoint, &call.path)?;
        if let Some(Value::Object(query)) = input.get("query") {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                match v {
                    Value::String(s) => pairs.append_pair(k, s),
                    other => pairs.append_pair(k, &other.to_string()),
                };
            }
        }
        let shown = display_url(&url);
        let client = target_client(
            &url,
            &shown,
            target.ca_pem.as_deref(),
            target.insecure,
            &ctx.policy,
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut request = client
            .request(call.method.clone(), url.clone())
            .header("X-Auth-Token", target.token.expose())
            .header("Accept", "application/json");
        if let Some(version) = string(input, "microversion") {
            request = request.header(
                "OpenStack-API-Version",
                format!("{} {version}", call.service_type),
            );
            if call.service_type == "compute" {
                request = request.header("X-OpenStack-Nova-API-Version", version);
            }
        }
        if let Some(Value::Object(headers)) = input.get("headers") {
            for (k, v) in headers {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                request = request.header(k.as_str(), v);
            }
        }
        request = match &call.body {
            None => request,
            Some(Value::String(text)) => request.body(text.clone()),
            Some(other) => request.json(other),
        };
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&shown, e).to_string())?;
        let status = response.status();
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            if let Ok(v) = value.to_str() {
                headers.insert(name.as_str().to_string(), Value::String(v.to_string()));
            }
        }
        let text = response
            .text()
            .await
            .map_err(|e| transport_error(&shown, e).to_string())?;
        let content = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text.clone()));
        if !status.is_success() {
            return Err(format!(
                "{} {shown} failed with {}: {}",
                call.method,
                status,
                service_error(&content, &text, target.token.expose())
            ));
        }
        Ok(ActionOutcome::Success(json!({
            "status": status.as_u16(),
            "headers": headers,
            "content": content,
        })))
    }
}

/// The endpoint URL with `path` appended (the endpoint's own path kept).
fn join(endpoint: &Url, path: &str) -> Result<Url, String> {
    let mut text = endpoint.as_str().trim_end_matches('/').to_string();
    if !path.is_empty() {
        if !path.starts_with('/') {
            text.push('/');
        }
        text.push_str(path);
    }
    Url::parse(&text).map_err(|e| format!("cannot build a URL from {endpoint} and '{path}': {e}"))
}

/// The service's own error text: `{"error": {"message"}}` (Keystone),
/// `{"itemNotFound": {"message"}}` (Nova), `{"NeutronError": {"message"}}`,
/// or the body; shortened, and never the token.
fn service_error(content: &Value, text: &str, token: &str) -> String {
    let message = content
        .as_object()
        .and_then(|o| {
            o.values()
                .find_map(|v| v.get("message").and_then(Value::as_str))
        })
        .or_else(|| content.get("message").and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| text.to_string());
    let mut message = if token.len() >= 4 {
        message.replace(token, "***")
    } else {
        message
    };
    if message.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_action_is_registered_with_its_path_parameters() {
        let mut registry = ActionRegistry::standard();
        register(&mut registry);
        let get = registry.get("nova.servers_get").unwrap();
        assert_eq!(get.input[0].name, "server_id");
        assert!(get.input[0].default.is_none());
        assert!(registry.needs_target("keystone.auth_projects"));
        assert!(registry.needs_target("openstack.request"));
        assert!(!registry.needs_target("std.echo"));
        for name in [
            "keystone.projects_list",
            "keystone.users_list",
            "keystone.roles_list",
            "keystone.regions_list",
            "keystone.services_list",
            "keystone.endpoints_list",
            "nova.servers_list",
            "nova.servers_create",
            "nova.servers_delete",
            "nova.flavors_list",
            "nova.keypairs_list",
            "glance.images_list",
            "glance.images_get",
            "neutron.list_networks",
            "neutron.list_subnets",
            "neutron.list_ports",
            "neutron.create_network",
            "neutron.delete_network",
            "cinder.volumes_list",
            "cinder.volumes_get",
            "cinder.volumes_create",
            "cinder.volumes_delete",
            "heat.stacks_list",
            "heat.stacks_get",
            "heat.stacks_create",
            "heat.stacks_delete",
            "swift.get_account",
            "swift.get_container",
            "swift.put_object",
            "swift.get_object",
        ] {
            let info = registry
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert!(
                info.input.iter().any(|p| p.name == "action_region"),
                "{name}"
            );
        }
    }

    #[test]
    fn named_actions_fill_their_path_and_wrap_their_body() {
        let create = OpenStackAction {
            named: TABLE.iter().position(|n| n.name == "nova.servers_create"),
        };
        let input = json!({"server": {"name": "vm"}, "action_region": "RegionTwo"});
        let call = create.call(input.as_object().unwrap()).unwrap();
        assert_eq!(call.method, reqwest::Method::POST);
        assert_eq!(call.path, "/servers");
        assert_eq!(call.body, Some(json!({"server": {"name": "vm"}})));
        assert_eq!(call.region.as_deref(), Some("RegionTwo"));
        let object = OpenStackAction {
            named: TABLE.iter().position(|n| n.name == "swift.get_object"),
        };
        let input = json!({"container": "c 1", "obj": "a/b"});
        let call = object.call(input.as_object().unwrap()).unwrap();
        assert_eq!(call.path, "/c+1/a%2Fb");
    }

    #[test]
    fn paths_join_under_the_endpoint() {
        let endpoint = Url::parse("http://k:5000/v3").unwrap();
        assert_eq!(
            join(&endpoint, "/auth/projects").unwrap().as_str(),
            "http://k:5000/v3/auth/projects"
        );
        let account = Url::parse("http://s:8080/v1/AUTH_p/").unwrap();
        assert_eq!(
            join(&account, "").unwrap().as_str(),
            "http://s:8080/v1/AUTH_p"
        );
    }

    #[test]
    fn service_errors_keep_the_message_and_never_the_token() {
        let content = json!({"error": {"message": "token abcdef123 is bad", "code": 401}});
        assert_eq!(service_error(&content, "", "abcdef123"), "token *** is bad");
        assert_eq!(
            service_error(&json!("x"), "plain text", "zzzz"),
            "plain text"
        );
    }
}
