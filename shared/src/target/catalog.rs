//! The Keystone v3 service catalog and endpoint selection.
//!
//! A target's endpoints come from its token's own catalog (never from an
//! admin listing), so selection must be exact and its errors must show what
//! the catalog does hold: a wrong region or interface is the most common
//! mistake when pointing at a new cloud.

use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A service catalog as Keystone v3 returns it in a token body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Catalog {
    /// The services, in Keystone's order.
    pub services: Vec<Service>,
}

/// One service of the catalog (`identity`, `compute`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// The service type, e.g. `compute`.
    #[serde(rename = "type")]
    pub service_type: String,
    /// The service name, e.g. `nova` (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The service id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its endpoints.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// One endpoint of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// The region id (v3 has both `region_id` and the legacy `region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_id: Option<String>,
    /// The legacy region name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The endpoint URL.
    pub url: String,
    /// The endpoint id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Endpoint {
    /// The endpoint's region, whichever field carries it.
    pub fn region_name(&self) -> Option<&str> {
        self.region_id.as_deref().or(self.region.as_deref())
    }
}

/// Why an endpoint could not be chosen or a catalog could not be read.
/// All are the caller's fault (wrong service type, interface or region, or
/// a catalog from elsewhere); retrying does not help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    /// No endpoint matches; the message lists what the catalog has.
    #[error(
        "no '{service_type}' endpoint with interface '{interface}'{region}; the catalog has: {summary}"
    )]
    NoEndpoint {
        /// The service type asked for.
        service_type: String,
        /// The interface asked for.
        interface: String,
        /// ` in region 'X'` or empty.
        region: String,
        /// What the catalog holds, as `type (Region: interfaces)`.
        summary: String,
    },
    /// Several regions offer the endpoint and no region was given.
    #[error(
        "'{service_type}' has '{interface}' endpoints in several regions ({regions}); choose one with a region name"
    )]
    AmbiguousRegion {
        /// The service type asked for.
        service_type: String,
        /// The interface asked for.
        interface: String,
        /// The regions that offer it.
        regions: String,
    },
    /// The chosen endpoint's URL does not parse.
    #[error("the catalog's '{service_type}' endpoint URL '{url}' is not a valid URL: {reason}")]
    BadUrl {
        /// The service type asked for.
        service_type: String,
        /// The URL as the catalog has it.
        url: String,
        /// The parse error.
        reason: String,
    },
    /// The JSON is not a catalog.
    #[error("not a Keystone service catalog: {0}")]
    Malformed(String),
}

impl Catalog {
    /// Read a catalog from a Keystone token body `{"token": {"catalog": [...]}}`,
    /// a bare `{"catalog": [...]}` or the list itself.
    pub fn from_value(value: &Value) -> Result<Self, CatalogError> {
        let list = value
            .get("token")
            .and_then(|token| token.get("catalog"))
            .or_else(|| value.get("catalog"))
            .unwrap_or(value);
        if !list.is_array() {
            return Err(CatalogError::Malformed(
                "expected {\"token\": {\"catalog\": [...]}}, {\"catalog\": [...]} or a list".into(),
            ));
        }
        serde_json::from_value(list.clone())
            .map_err(|error| CatalogError::Malformed(error.to_string()))
    }

    /// The URL of the `service_type` endpoint with `interface` (`public`,
    /// `internal`, `admin`; the v2 spellings `publicURL` etc. are accepted)
    /// in `region`, or in the only region offering it when `region` is None.
    pub fn endpoint(
        &self,
        service_type: &str,
        interface: &str,
        region: Option<&str>,
    ) -> Result<Url, CatalogError> {
        let interface = interface.strip_suffix("URL").unwrap_or(interface);
        let matches: Vec<&Endpoint> = self
            .services
            .iter()
            .filter(|service| service.service_type == service_type)
            .flat_map(|service| service.endpoints.iter())
            .filter(|endpoint| endpoint.interface == interface)
            .filter(|endpoint| region.is_none_or(|wanted| endpoint.region_name() == Some(wanted)))
            .collect();
        let Some(first) = matches.first() else {
            return Err(CatalogError::NoEndpoint {
                service_type: service_type.to_owned(),
                interface: interface.to_owned(),
                region: region
                    .map(|r| format!(" in region '{r}'"))
                    .unwrap_or_default(),
                summary: self.summary(),
            });
        };
        let mut regions: Vec<&str> = matches
            .iter()
            .map(|endpoint| endpoint.region_name().unwrap_or("(no region)"))
            .collect();
        regions.dedup();
        if regions.len() > 1 {
            return Err(CatalogError::AmbiguousRegion {
                service_type: service_type.to_owned(),
                interface: interface.to_owned(),
                regions: regions.join(", "),
            });
        }
        Url::parse(&first.url).map_err(|error| CatalogError::BadUrl {
            service_type: service_type.to_owned(),
            url: first.url.clone(),
            reason: error.to_string(),
        })
    }

    /// `identity (RegionOne: public, internal, admin); compute (...)`.
    pub fn summary(&self) -> String {
        if self.services.is_empty() {
            return "no services".to_owned();
        }
        self.services
            .iter()
            .map(|service| {
                let mut regions: Vec<(&str, Vec<&str>)> = Vec::new();
                for endpoint in &service.endpoints {
                    let name = endpoint.region_name().unwrap_or("no region");
                    match regions.iter_mut().find(|(region, _)| *region == name) {
                        Some((_, interfaces)) => interfaces.push(&endpoint.interface),
                        None => regions.push((name, vec![&endpoint.interface])),
                    }
                }
                let regions: Vec<String> = regions
                    .iter()
                    .map(|(region, interfaces)| format!("{region}: {}", interfaces.join(", ")))
                    .collect();
                format!("{} ({})", service.service_type, regions.join("; "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_value(&json!({"token": {"catalog": [
            {"type": "identity", "name": "keystone", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "http://k/v3"},
                {"interface": "internal", "region_id": "RegionOne", "url": "http://k-int/v3"},
                {"interface": "admin", "region_id": "RegionOne", "url": "http://k-adm/v3"}]},
            {"type": "compute", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": "http://n1/v2.1"},
                {"interface": "public", "region_id": "RegionTwo", "url": "http://n2/v2.1"}]}
        ]}}))
        .unwrap()
    }

    #[test]
    fn picks_the_endpoint_by_interface_and_region() {
        let catalog = catalog();
        assert_eq!(
            catalog
                .endpoint("identity", "internal", None)
                .unwrap()
                .as_str(),
            "http://k-int/v3"
        );
        assert_eq!(
            catalog
                .endpoint("identity", "publicURL", None)
                .unwrap()
                .as_str(),
            "http://k/v3"
        );
        assert_eq!(
            catalog
                .endpoint("compute", "public", Some("RegionTwo"))
                .unwrap()
                .as_str(),
            "http://n2/v2.1"
        );
    }

    #[test]
    fn a_missing_endpoint_lists_what_the_catalog_has() {
        let error = catalog()
            .endpoint("compute", "internal", Some("RegionTwo"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "no 'compute' endpoint with interface 'internal' in region 'RegionTwo'; the catalog has: \
             identity (RegionOne: public, internal, admin); compute (RegionOne: public; RegionTwo: public)"
        );
    }

    #[test]
    fn several_regions_without_a_region_name_is_an_error() {
        let error = catalog().endpoint("compute", "public", None).unwrap_err();
        assert!(
            matches!(error, CatalogError::AmbiguousRegion { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("RegionOne, RegionTwo"),
            "{error}"
        );
    }

    #[test]
    fn accepts_bare_and_list_forms_and_rejects_others() {
        let list = json!([{"type": "image", "endpoints": []}]);
        assert_eq!(Catalog::from_value(&list).unwrap().services.len(), 1);
        assert_eq!(
            Catalog::from_value(&json!({"catalog": list}))
                .unwrap()
                .services
                .len(),
            1
        );
        assert!(Catalog::from_value(&json!({"token": {}})).is_err());
        assert!(Catalog::from_value(&json!([{"endpoints": []}])).is_err());
    }
}
