//! OpenID Connect discovery, MSAL's instance discovery and user-realm discovery.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

use crate::directory::{CONSUMERS_TENANT_ID, Directory, TenantSegment};
use crate::identity::error::AadError;
use crate::seed;
use crate::state::Shared;

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) async fn openid_configuration(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    let segment = shared.lock().directory.tenant(&tenant);
    let base = &shared.base_url;
    let issuer_tenant = match segment {
        TenantSegment::Unknown => {
            return AadError::unknown_tenant(&tenant)
                .into_response_with(&uuid::Uuid::new_v4().to_string());
        }
        TenantSegment::Tenant => seed::TENANT_ID.to_string(),
        TenantSegment::Consumers => CONSUMERS_TENANT_ID.to_string(),
        TenantSegment::Common | TenantSegment::Organizations => "{tenantid}".to_string(),
    };
    let host = base.split("://").nth(1).unwrap_or(base.as_str());
    Json(json!({
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
            "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/{tenant}/kerberos"),
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": host,
        "rbac_url": "https://pas.windows.net",
    }))
    .into_response()
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=…` (MSAL instance
/// discovery). Only the emulator's own host is a known instance.
pub(crate) async fn instance_discovery(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let base = &shared.base_url;
    let host = base
        .split("://")
        .nth(1)
        .unwrap_or(base.as_str())
        .to_string();
    let endpoint = query
        .get("authorization_endpoint")
        .cloned()
        .unwrap_or_default();
    let known = endpoint.is_empty()
        || endpoint.contains(&host)
        || endpoint.contains("login.microsoftonline.com");
    if !known {
        let error = AadError::new("invalid_instance", 50_049, "Unknown or invalid instance.");
        return error.into_response_with(&uuid::Uuid::new_v4().to_string());
    }
    let tenant = endpoint
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').nth(1))
        .filter(|t| !t.is_empty())
        .unwrap_or("common")
        .to_string();
    Json(json!({
        "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host],
        }],
    }))
    .into_response()
}

/// `GET /common/userrealm/{username}?api-version=1.0` (MSAL's user-realm discovery before ROPC).
pub(crate) async fn user_realm(Path(username): Path<String>) -> Response {
    let domain = username
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let managed = Directory::is_internal_domain(&username);
    let body = if managed {
        json!({
            "ver": "1.0",
            "account_type": "Managed",
            "domain_name": domain,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        })
    } else {
        json!({"ver": "1.0", "account_type": "Unknown", "cloud_instance_name": "microsoftonline.com"})
    };
    (StatusCode::OK, Json(body)).into_response()
}
