//! Patient CRUD through the gateway, with every error case.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{json_of, patient_body, spawn_stack};

#[tokio::test]
async fn full_crud_through_the_gateway() {
    let stack = spawn_stack().await;
    let user = stack.user_token("crud@example.com").await;

    let response = stack.create_patient(&user, &patient_body("Grace@Example.com")).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_of(response).await;
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["email"], "grace@example.com");
    assert_eq!(created["dateOfBirth"], "1990-05-17");
    assert_eq!(created["registeredDate"], "2026-01-15");

    let response = stack.authed(Method::GET, &format!("/api/patients/{id}"), &user, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_of(response).await, created);

    // Update without registeredDate keeps it; the seed's `dateofBirth` spelling is accepted.
    let update = json!({"name": "Grace Hopper", "email": "grace@example.com", "address": "Arlington", "dateofBirth": "1980-12-09"});
    let response = stack.authed(Method::PUT, &format!("/api/patients/{id}"), &user, Some(&update)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated = json_of(response).await;
    assert_eq!(updated["name"], "Grace Hopper");
    assert_eq!(updated["dateOfBirth"], "1980-12-09");
    assert_eq!(updated["registeredDate"], "2026-01-15");

    let list = json_of(stack.authed(Method::GET, "/api/patients", &user, None).await).await;
    assert_eq!(list["totalElements"], 1);
    assert_eq!(list["content"][0]["name"], "Grace Hopper");

    let admin = stack.admin_token().await;
    let response = stack.authed(Method::DELETE, &format!("/api/patients/{id}"), &admin, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = stack.authed(Method::GET, &format!("/api/patients/{id}"), &user, None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = stack.authed(Method::DELETE, &format!("/api/patients/{id}"), &admin, None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_as_user_is_forbidden_and_keeps_the_patient() {
    let stack = spawn_stack().await;
    let user = stack.user_token("deleter@example.com").await;
    let created = json_of(stack.create_patient(&user, &patient_body("keep@example.com")).await).await;
    let path = format!("/api/patients/{}", created["id"].as_str().expect("id"));
    let response = stack.authed(Method::DELETE, &path, &user, None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Spoofing the role header changes nothing.
    let response = stack
        .client
        .delete(stack.url(&path))
        .bearer_auth(&user)
        .header("x-user-role", "ADMIN")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(stack.authed(Method::GET, &path, &user, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn patient_service_itself_refuses_delete_without_an_admin_identity() {
    let stack = spawn_stack().await;
    let user = stack.user_token("direct@example.com").await;
    let created = json_of(stack.create_patient(&user, &patient_body("direct@example.com")).await).await;
    let url = format!("{}/patients/{}", stack.patient, created["id"].as_str().expect("id"));
    let response = stack.client.delete(&url).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = stack.client.delete(&url).bearer_auth(&user).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "a USER's own token: its role may not delete");
    let admin = stack.admin_token().await;
    let response = stack.client.delete(&url).bearer_auth(&admin).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT, "an ADMIN's token, straight to the service");
}

#[tokio::test]
async fn validation_errors_name_each_field_and_change_nothing() {
    let stack = spawn_stack().await;
    let user = stack.user_token("validate@example.com").await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "name"),
        (
            json!({"name": "A", "email": "bad", "address": "x", "dateOfBirth": "1990-01-01", "registeredDate": "2026-01-01"}),
            "email",
        ),
        (
            json!({"name": "A", "email": "a@b.co", "address": "x", "dateOfBirth": "2999-01-01", "registeredDate": "2026-01-01"}),
            "dateOfBirth",
        ),
        (
            json!({"name": "A", "email": "a@b.co", "address": "x", "dateOfBirth": "01/02/1990", "registeredDate": "2026-01-01"}),
            "dateOfBirth",
        ),
        (json!({"name": "A", "email": "a@b.co", "address": "x", "dateOfBirth": "1990-01-01"}), "registeredDate"),
        (
            json!({"name": 42, "email": "a@b.co", "address": "x", "dateOfBirth": "1990-01-01", "registeredDate": "2026-01-01"}),
            "name",
        ),
        (
            json!({"name": "", "email": "a@b.co", "address": "x", "dateOfBirth": "1990-01-01", "registeredDate": "2026-01-01"}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let response = stack.create_patient(&user, &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error = json_of(response).await;
        let fields: Vec<&str> =
            error["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
        assert!(fields.contains(&field), "{body}: {fields:?}");
    }
    let response = stack
        .client
        .post(stack.url("/api/patients"))
        .bearer_auth(&user)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(response).await["error"], "MALFORMED_JSON");

    let list = json_of(stack.authed(Method::GET, "/api/patients", &user, None).await).await;
    assert_eq!(list["totalElements"], 0);
}

#[tokio::test]
async fn malformed_and_unknown_ids() {
    let stack = spawn_stack().await;
    let user = stack.user_token("ids@example.com").await;
    let response = stack.authed(Method::GET, "/api/patients/not-a-uuid", &user, None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(response).await["fields"][0]["field"], "id");
    let missing = uuid::Uuid::new_v4();
    let response = stack.authed(Method::GET, &format!("/api/patients/{missing}"), &user, None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = stack
        .authed(Method::PUT, &format!("/api/patients/{missing}"), &user, Some(&patient_body("x@example.com")))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = stack.authed(Method::PUT, "/api/patients/nope", &user, Some(&json!({}))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let admin = stack.admin_token().await;
    let response = stack.authed(Method::DELETE, "/api/patients/nope", &admin, None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn duplicate_email_is_409_on_create_and_update() {
    let stack = spawn_stack().await;
    let user = stack.user_token("dupes@example.com").await;
    assert_eq!(stack.create_patient(&user, &patient_body("one@example.com")).await.status(), StatusCode::CREATED);
    let second = json_of(stack.create_patient(&user, &patient_body("two@example.com")).await).await;
    let response = stack.create_patient(&user, &patient_body("ONE@example.com")).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let path = format!("/api/patients/{}", second["id"].as_str().expect("id"));
    let response = stack.authed(Method::PUT, &path, &user, Some(&patient_body("one@example.com"))).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let unchanged = json_of(stack.authed(Method::GET, &path, &user, None).await).await;
    assert_eq!(unchanged["email"], "two@example.com");
}

#[tokio::test]
async fn pagination_bounds_order_and_search() {
    let stack = spawn_stack().await;
    let user = stack.user_token("pages@example.com").await;
    let mut ids = Vec::new();
    for i in 0..25 {
        let mut body = patient_body(&format!("p{i:02}@example.com"));
        body["name"] = json!(if i % 5 == 0 { format!("Searchable 100% {i}") } else { format!("Patient {i}") });
        let created = json_of(stack.create_patient(&user, &body).await).await;
        ids.push(created["id"].as_str().expect("id").to_string());
    }
    let page0 = json_of(stack.authed(Method::GET, "/api/patients", &user, None).await).await;
    assert_eq!(page0["size"], 20);
    assert_eq!(page0["content"].as_array().expect("array").len(), 20);
    assert_eq!((page0["totalElements"].clone(), page0["totalPages"].clone()), (json!(25), json!(2)));
    let page1 = json_of(stack.authed(Method::GET, "/api/patients?page=1&size=20", &user, None).await).await;
    let listed: Vec<String> = page0["content"]
        .as_array()
        .into_iter()
        .chain(page1["content"].as_array())
        .flatten()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(listed, ids, "stable creation order across pages");

    let max = json_of(stack.authed(Method::GET, "/api/patients?size=100", &user, None).await).await;
    assert_eq!(max["content"].as_array().expect("array").len(), 25);
    for bad in ["size=0", "size=101", "page=-1", "size=abc", "page=1.5"] {
        let response = stack.authed(Method::GET, &format!("/api/patients?{bad}"), &user, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let found = json_of(stack.authed(Method::GET, "/api/patients?search=100%25", &user, None).await).await;
    assert_eq!(found["totalElements"], 5, "search is a literal substring match");
    let by_email = json_of(stack.authed(Method::GET, "/api/patients?search=P07@EXAMPLE", &user, None).await).await;
    assert_eq!(by_email["totalElements"], 1);
    let beyond = json_of(stack.authed(Method::GET, "/api/patients?page=9", &user, None).await).await;
    assert_eq!(beyond["content"].as_array().expect("array").len(), 0);
    assert_eq!(beyond["nextCursor"], Value::Null);

    // Keyset pages: each `after` is the previous page's `nextCursor`; no totals.
    let mut walked = Vec::new();
    let mut sizes = Vec::new();
    let mut path = "/api/patients?size=10".to_string();
    loop {
        let page = json_of(stack.authed(Method::GET, &path, &user, None).await).await;
        let content = page["content"].as_array().expect("array");
        sizes.push(content.len());
        walked.extend(content.iter().map(|p| p["id"].as_str().expect("id").to_string()));
        // The first page is numbered (page 0, with totals); those after it are not.
        assert_eq!(page.get("totalElements").is_some(), sizes.len() == 1, "{page}");
        match page["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), walked.last().map(String::as_str), "the cursor is the page's last id");
                path = format!("/api/patients?size=10&after={next}");
            }
            None => break,
        }
    }
    assert_eq!((walked, sizes), (ids.clone(), vec![10, 10, 5]), "every patient once, in creation order");
    let after_first = format!("/api/patients?size=100&after={}", ids[0]);
    let after_first = json_of(stack.authed(Method::GET, &after_first, &user, None).await).await;
    assert_eq!(after_first["content"].as_array().map(Vec::len), Some(24));
    for absent in ["page", "totalElements", "totalPages"] {
        assert!(after_first.get(absent).is_none(), "a keyset page has no {absent}: {after_first}");
    }
    // Keyset and search together: the five "Searchable" patients, two at a time.
    let first = json_of(stack.authed(Method::GET, "/api/patients?search=searchable&size=2", &user, None).await).await;
    let cursor = first["nextCursor"].as_str().expect("more than two match");
    let rest = format!("/api/patients?search=searchable&size=2&after={cursor}");
    let second = json_of(stack.authed(Method::GET, &rest, &user, None).await).await;
    let second_ids: Vec<&str> =
        second["content"].as_array().into_iter().flatten().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(second_ids, [ids[10].as_str(), ids[15].as_str()]);
    for (bad, field) in [(format!("after={}&page=0", ids[0]), "after"), ("after=nope".to_string(), "after")] {
        let response = stack.authed(Method::GET, &format!("/api/patients?{bad}"), &user, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(json_of(response).await["fields"][0]["field"], field, "{bad}");
    }
}

#[tokio::test]
async fn control_and_format_characters_are_a_400_naming_the_field() {
    let stack = spawn_stack().await;
    let user = stack.user_token("controls@example.com").await;
    // NUL: Postgres refuses it in text (this was a 500); U+202E reverses what follows.
    for search in ["%00", "a%E2%80%AEb"] {
        let response = stack.authed(Method::GET, &format!("/api/patients?search={search}"), &user, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{search}");
        let body = json_of(response).await;
        assert_eq!(body["fields"][0]["field"], "search", "{body}");
    }
    let mut body = patient_body("rlo@example.com");
    body["name"] = json!("Ada\u{202E}gnp.exe");
    let response = stack.create_patient(&user, &body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(response).await["fields"][0]["field"], "name");
    let list = json_of(stack.authed(Method::GET, "/api/patients", &user, None).await).await;
    assert_eq!(list["totalElements"], 0, "nothing stored");
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let stack = spawn_stack().await;
    let user = stack.user_token("methods@example.com").await;
    // Through the gateway to patient-service, and to auth-service's public route.
    for (method, path) in [(Method::PUT, "/api/patients"), (Method::GET, "/auth/login")] {
        let response = stack.authed(method.clone(), path, &user, None).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let body = json_of(response).await;
        assert_eq!(
            (body["status"].as_u64(), body["error"].as_str()),
            (Some(405), Some("METHOD_NOT_ALLOWED")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn openapi_document_is_public_through_the_gateway() {
    let stack = spawn_stack().await;
    let response = stack.client.get(stack.url("/api-docs/patients")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let doc = json_of(response).await;
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    assert!(doc["paths"]["/patients/{id}"]["delete"].is_object());
    let ui = stack.client.get(format!("{}/swagger-ui/", stack.patient)).send().await.expect("request");
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(ui.text().await.expect("html").contains("swagger"));
}

#[tokio::test]
async fn concurrent_creates_each_get_their_own_answer() {
    let stack = spawn_stack().await;
    let user = stack.user_token("burst@example.com").await;
    // Sent at once, they share commits (group commit); ten of them want one email.
    let bodies: Vec<Value> = (0..40)
        .map(|i| patient_body(&format!("burst{i}@example.com")))
        .chain((0..10).map(|_| patient_body("twin@example.com")))
        .collect();
    let responses = futures_util::future::join_all(bodies.iter().map(|b| stack.create_patient(&user, b))).await;
    let mut created = Vec::new();
    let mut conflicts = 0;
    for (body, response) in bodies.iter().zip(responses) {
        match response.status() {
            StatusCode::CREATED => {
                let patient = json_of(response).await;
                assert_eq!(patient["email"], body["email"], "each create answers with its own patient");
                created.push(patient);
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["email"], "twin@example.com");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {}", response.text().await.unwrap_or_default()),
        }
    }
    assert_eq!((created.len(), conflicts), (41, 9));
    let list = json_of(stack.authed(Method::GET, "/api/patients?size=100", &user, None).await).await;
    assert_eq!(list["totalElements"], 41);
    for patient in &created {
        let path = format!("/api/patients/{}", patient["id"].as_str().expect("id"));
        assert_eq!(&json_of(stack.authed(Method::GET, &path, &user, None).await).await, patient);
    }
}
