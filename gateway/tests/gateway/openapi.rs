//! The OpenAPI document at `/api/openapi.json` against the router that
//! serves it: every method every API path answers (anything but 405) is
//! an operation of the document, and every operation is served. A route
//! added without its annotation fails here.

use super::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `/api/rounds/{id}` with every parameter filled in.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => inside = true,
            '}' => {
                inside = false;
                out.push('1');
            }
            _ if inside => {}
            c => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn the_document_lists_every_api_route_the_gateway_serves() {
    let app = TestApp::spawn(|_| {}).await;
    let r = app.get("/api/openapi.json").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented = doc["paths"].as_object().unwrap();

    let paths = gateway::http::api::paths();
    assert!(paths.len() >= 15, "{paths:?}");
    let mut served = HashSet::new();
    for path in &paths {
        let url = app.url(&concrete(path));
        for method in METHODS {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let status = app.client.request(m, &url).send().await.unwrap().status();
            if status != 405 {
                served.insert((path.to_string(), method));
            }
        }
    }
    let mut in_doc = HashSet::new();
    for (path, item) in documented {
        for method in METHODS {
            if item.get(method).is_some() {
                in_doc.insert((path.clone(), method));
            }
        }
    }
    let missing: Vec<_> = served.difference(&in_doc).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    let unserved: Vec<_> = in_doc.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    app.finish().await;
}

#[test]
fn every_operation_declares_its_errors_with_the_error_body() {
    let doc = serde_json::to_value(gateway::http::api::openapi::spec()).unwrap();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            // Every route sits behind the load-shedding guard.
            assert!(
                responses.contains_key("503"),
                "{method} {path} does not declare 503"
            );
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ApiErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert!(operations >= 20, "{operations} operations");
    for scheme in ["session", "queue_token", "pass", "registrar_basic"] {
        assert!(
            doc["components"]["securitySchemes"].get(scheme).is_some(),
            "{scheme}"
        );
    }
}

/// Bounds the handlers enforce are in the document, so that generated
/// clients and the fuzzer send what the gateway takes (found by fuzzing
/// with schemathesis's request-side checks: each was documented wider
/// than the handler accepts).
#[test]
fn the_document_states_the_bounds_the_handlers_enforce() {
    let doc = serde_json::to_value(gateway::http::api::openapi::spec()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let sections = &schemas["EnrollBody"]["properties"]["sections"];
    assert_eq!(sections["minItems"], 1, "{sections}");
    assert_eq!(sections["maxItems"], 12, "{sections}");
    let rate = &schemas["ChangeBody"]["properties"]["admission_per_min"];
    assert_eq!(rate["maximum"], 1_000_000, "{rate}");
    let params = doc["paths"]["/api/catalog"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))["schema"]
            .clone()
    };
    assert_eq!(param("per_page")["maximum"], 100);
    assert_eq!(param("page")["minimum"], 1);
    assert_eq!(param("credits")["maximum"], 12);
    assert_eq!(param("q")["maxLength"], 100);
}
