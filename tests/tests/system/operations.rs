//! Health, OpenAPI, Swagger UI and request ids.

use stratus_tests::TestApp;

#[tokio::test]
async fn liveness_and_readiness_answer_with_projection_lag() {
    let app = TestApp::spawn().await;
    let live = app
        .send(app.client.get(format!("{}/health/live", app.root)))
        .await;
    assert_eq!(live.status.as_u16(), 200);
    // The wallet opener appends the admin's `WalletOpened` just after the start, so the accounts
    // projection may briefly be one event behind: ask until it has caught up (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let ready = loop {
        let ready = app
            .send(app.client.get(format!("{}/health/ready", app.root)))
            .await;
        if ready.body["projection_lag"]["accounts"] == 0 || std::time::Instant::now() > deadline {
            break ready;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(ready.status.as_u16(), 200, "{}", ready.body);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["projection_lag"]["accounts"], 0);
}

#[tokio::test]
async fn the_openapi_document_describes_the_routes_and_the_docs_are_served_offline() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json", None).await;
    assert_eq!(doc.status.as_u16(), 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/me",
        "/api/v1/audit/events",
    ] {
        assert!(doc.body["paths"].get(path).is_some(), "{path} missing");
    }
    let ui = app
        .client
        .get(format!("{}/docs/", app.root))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status().as_u16(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn a_well_formed_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = TestApp::spawn().await;
    let echoed = app
        .send(
            app.client
                .get(format!("{}/health/live", app.root))
                .header("x-request-id", "trace-abc.123"),
        )
        .await;
    assert_eq!(echoed.headers["x-request-id"], "trace-abc.123");
    let replaced = app
        .send(
            app.client
                .get(format!("{}/health/live", app.root))
                .header("x-request-id", "bad id <script>"),
        )
        .await;
    let id = replaced.headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}
