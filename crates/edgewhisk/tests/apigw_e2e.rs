//! End-to-end tests of the built-in API gateway against the real `edgewhisk serve` binary:
//! the route management endpoints (`/api/v1/web/whisk.system/apimgmt/...`) driven over HTTP
//! as the clients drive them, and the routes served at `/api/<key uuid>/<basepath>/<relpath>`
//! with path parameters, verbs, CORS preflights, response types, a `require-whisk-auth`
//! secret from a swagger document, and persistence across a restart
//! (`docs/design/022-api-gateway.md`).

mod support;

use serde_json::{Value, json};
use support::api::{Reply, create_action, http, put_action, send, send_raw};
use support::cli::{guest_props, wsk_with};
use support::{GUEST_KEY, GUEST_UUID, ServerGuard, spawn_server};

/// An `.http` route's action: the path parameter, the path and method it saw, a query value.
const BOOK: &str = "function main(p) {\n  return {headers: {'x-book': 'yes'}, body: {id: p.id || null, path: p.__ow_path, method: p.__ow_method, q: p.q || null}};\n}\n";

/// A `.json` route's action.
const ECHO: &str = "function main(p) {\n  return {name: p.name || null, method: p.__ow_method, path: p.__ow_path};\n}\n";

fn mgmt(s: &ServerGuard, op: &str) -> String {
    s.url(&format!("/api/v1/web/whisk.system/apimgmt/{op}"))
}

/// The body the `openwhisk` npm client and `wsk` send for one endpoint.
fn endpoint(basepath: &str, relpath: &str, verb: &str, action: &str, name: Option<&str>) -> Value {
    let mut doc = json!({
        "namespace": "_",
        "gatewayBasePath": basepath,
        "gatewayPath": relpath,
        "gatewayMethod": verb,
        "id": format!("API:_:{basepath}"),
        "action": {
            "name": action,
            "namespace": "_",
            "backendMethod": "GET",
            "backendUrl": format!("http://127.0.0.1/api/v1/web/_/default/{action}.http"),
            "authkey": GUEST_KEY,
        },
    });
    if let Some(n) = name {
        doc["apiName"] = json!(n);
    }
    json!({ "apidoc": doc })
}

async fn create(s: &ServerGuard, body: &Value, response_type: &str) -> Reply {
    send(
        http()
            .post(mgmt(s, "createApi.http"))
            .query(&[("responsetype", response_type)])
            .json(body),
    )
    .await
}

async fn get_apis(s: &ServerGuard, basepath: Option<&str>) -> Vec<Value> {
    let mut req = http().get(mgmt(s, "getApi.http"));
    if let Some(b) = basepath {
        req = req.query(&[("basepath", b)]);
    }
    let r = send(req).await;
    r.expect_status(200, "getApi");
    r.body["apis"].as_array().cloned().expect("an apis array")
}

/// The `gwApiUrl` of the API at `basepath`.
async fn gw_url(s: &ServerGuard, basepath: &str) -> String {
    let apis = get_apis(s, Some(basepath)).await;
    apis[0]["value"]["gwApiUrl"]
        .as_str()
        .expect("a gwApiUrl")
        .to_owned()
}

async fn web_action(s: &ServerGuard, name: &str, code: &str, annotations: Value) {
    let r = put_action(
        s,
        name,
        json!({"exec": {"kind": "nodejs:20", "code": code}, "annotations": annotations}),
    )
    .await;
    r.expect_status(200, "create the web action");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn routes_are_managed_served_with_their_parameters_and_verbs_and_survive_a_restart() {
        let mut s = spawn_server(None);
        let web = json!([{"key": "web-export", "value": true}]);
        web_action(&s, "book", BOOK, web.clone()).await;
        web_action(&s, "echo", ECHO, web).await;
        create_action(&s, "private", "nodejs:20", ECHO).await;

        // Without a key, route management is refused.
        let r = send_raw(
            http()
                .post(mgmt(&s, "createApi.http"))
                .json(&endpoint("/library", "/x", "GET", "book", None)),
        )
        .await;
        r.expect_status(401, "createApi without a key");

        let r = create(
            &s,
            &endpoint("/library", "/books/{id}", "GET", "book", Some("Library")),
            "http",
        )
        .await;
        r.expect_status(200, "createApi GET /books/{id}");
        let base = s.base().to_owned();
        assert_eq!(
            r.body["gwApiUrl"],
            json!(format!("{base}/api/{GUEST_UUID}/library"))
        );
        let op = &r.body["apidoc"]["paths"]["/books/{id}"]["get"];
        assert_eq!(op["x-openwhisk"]["action"], "book");
        assert_eq!(op["x-openwhisk"]["namespace"], "guest");
        assert_eq!(
            op["x-openwhisk"]["url"],
            json!(format!("{base}/api/v1/web/guest/default/book.http"))
        );
        assert_eq!(op["parameters"][0]["name"], "id");
        assert_eq!(r.body["apidoc"]["info"]["title"], "Library");
        // Without an extension, as `createApi` is also addressed.
        let r = send(
            http()
                .post(mgmt(&s, "createApi"))
                .json(&endpoint("/library", "/books", "POST", "echo", None)),
        )
        .await;
        r.expect_status(200, "createApi POST /books");
        let r = create(
            &s,
            &endpoint("/library", "/secret", "GET", "private", None),
            "json",
        )
        .await;
        r.expect_status(
            200,
            "a route to an action that is not a web action is stored",
        );
        let r = create(
            &s,
            &json!({"apidoc": {"namespace": "_", "gatewayBasePath": "/x"}}),
            "json",
        )
        .await;
        r.expect_status(400, "an apidoc without a path");
        assert_eq!(
            r.expect_error_body("missing field"),
            "apidoc is missing the gatewayPath field"
        );

        let apis = get_apis(&s, None).await;
        assert_eq!(apis.len(), 1);
        let paths = &apis[0]["value"]["apidoc"]["paths"];
        assert_eq!(paths.as_object().map(|p| p.len()), Some(3), "{paths}");
        assert_eq!(get_apis(&s, Some("Library")).await.len(), 1, "by API name");
        assert!(get_apis(&s, Some("/nothing")).await.is_empty());

        let gw = gw_url(&s, "/library").await;
        // GET with a path parameter: in the parameters and, for `.http`, in __ow_path.
        let r = send_raw(http().get(format!("{gw}/books/42?q=find"))).await;
        r.expect_status(200, "GET /books/42");
        assert_eq!(
            r.body,
            json!({"id": "42", "path": "/books/42", "method": "get", "q": "find"})
        );
        assert_eq!(r.headers["x-book"], "yes");
        assert_eq!(r.headers["access-control-allow-origin"], "*");
        assert!(r.activation_header().is_some());
        // POST with a JSON body to a `.json` route.
        let r = send_raw(
            http()
                .post(format!("{gw}/books"))
                .json(&json!({"name": "dune"})),
        )
        .await;
        r.expect_status(200, "POST /books");
        assert_eq!(
            r.body,
            json!({"name": "dune", "method": "post", "path": ""})
        );
        // A CORS preflight for a path without an OPTIONS operation.
        let r = send_raw(
            http()
                .request(reqwest::Method::OPTIONS, format!("{gw}/books/42"))
                .header("origin", "http://example.org")
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "x-custom"),
        )
        .await;
        r.expect_status(200, "preflight");
        assert_eq!(r.headers["access-control-allow-origin"], "*");
        assert_eq!(r.headers["access-control-allow-headers"], "x-custom");
        assert_eq!(
            r.headers["access-control-allow-methods"],
            "GET, PUT, POST, DELETE, PATCH, HEAD, OPTIONS"
        );
        // A verb the path does not have, a path that is not routed, a key that is not one.
        let r = send_raw(http().put(format!("{gw}/books/42"))).await;
        r.expect_status(404, "PUT /books/42");
        assert_eq!(r.expect_error_body("verb"), "Whoops. Verb not supported.");
        send_raw(http().get(format!("{gw}/nothing")))
            .await
            .expect_status(404, "unrouted");
        let other = gw.replace(GUEST_UUID, "00000000-0000-4000-8000-000000000000");
        send_raw(http().get(format!("{other}/books/1")))
            .await
            .expect_status(404, "other key");
        // The action behind a route must be a web action, as for /api/v1/web.
        send_raw(http().get(format!("{gw}/secret")))
            .await
            .expect_status(404, "not a web action");

        // Restart: the routes are stored.
        s.restart();
        let gw = gw_url(&s, "/library").await;
        let r = send_raw(http().get(format!("{gw}/books/7"))).await;
        r.expect_status(200, "GET /books/7 after a restart");
        assert_eq!(r.body["id"], "7");

        // Delete one operation, then one path, then the API.
        let r = send(http().delete(mgmt(&s, "deleteApi.http")).query(&[
            ("basepath", "/library"),
            ("relpath", "/books"),
            ("operation", "POST"),
            ("force", "true"),
        ]))
        .await;
        r.expect_status(200, "delete POST /books");
        assert_eq!(r.body, json!({}));
        send_raw(http().post(format!("{gw}/books")))
            .await
            .expect_status(404, "deleted operation");
        let r = send(
            http()
                .delete(mgmt(&s, "deleteApi.http"))
                .query(&[("basepath", "/library"), ("relpath", "/books")]),
        )
        .await;
        r.expect_status(404, "a path already deleted");
        let r = send(
            http()
                .delete(mgmt(&s, "deleteApi.http"))
                .query(&[("basepath", "Library")]),
        )
        .await;
        r.expect_status(200, "delete the API by name");
        assert!(get_apis(&s, None).await.is_empty());
        send_raw(http().get(format!("{gw}/books/7")))
            .await
            .expect_status(404, "deleted API");
        let r = send(
            http()
                .delete(mgmt(&s, "deleteApi.http"))
                .query(&[("basepath", "/library")]),
        )
        .await;
        r.expect_status(404, "delete an unknown API");
        assert_eq!(
            r.expect_error_body("unknown"),
            "API '/library' does not exist."
        );
    }

    #[tokio::test]
    async fn a_swagger_document_routes_to_a_secured_web_action_at_the_root_base_path() {
        let s = spawn_server(None);
        let secured = json!([
            {"key": "web-export", "value": true},
            {"key": "require-whisk-auth", "value": "s3cret"},
        ]);
        web_action(&s, "svc_hello", ECHO, secured).await;
        let case = |id: &str, url: &str| {
            json!({"operations": [id], "execute": [
                {"set-variable": {"actions": [
                    {"set": "message.headers.X-Require-Whisk-Auth", "value": "s3cret"}
                ]}},
                {"invoke": {"target-url": url, "verb": "keep"}},
            ]})
        };
        // As the Serverless plugin writes it, API host with its scheme included.
        let url = format!("https://{}/api/v1/web/_/default/svc_hello.json", s.base());
        let swagger = json!({
            "swagger": "2.0",
            "basePath": "/",
            "info": {"title": "svc", "version": "1.0"},
            "paths": {"/hello": {"get": {
                "operationId": "get-/hello",
                "responses": {"200": {"description": "ok"}},
                "x-openwhisk": {"action": "svc_hello", "namespace": "_", "package": "default", "url": url},
            }}},
            "x-ibm-configuration": {
                "cors": {"enabled": true},
                "assembly": {"execute": [{"operation-switch": {"case": [case("get-/hello", &url)]}}]},
            },
        });
        let r = create(
            &s,
            &json!({"apidoc": {"namespace": "_", "swagger": swagger}}),
            "json",
        )
        .await;
        r.expect_status(200, "createApi with a swagger document");
        let gw = r.body["gwApiUrl"].as_str().expect("a gwApiUrl").to_owned();
        assert_eq!(gw, format!("{}/api/{GUEST_UUID}", s.base()));
        let r = send_raw(http().get(format!("{gw}/hello?name=sls"))).await;
        r.expect_status(200, "GET /hello with the secret");
        assert_eq!(r.body["name"], "sls");
        // The secret is the route's: the web action itself still refuses callers without it.
        let direct = s.url("/api/v1/web/guest/default/svc_hello.json");
        send_raw(http().get(direct))
            .await
            .expect_status(401, "the web action without secret");
    }

    #[tokio::test]
    async fn the_cli_creates_lists_gets_and_deletes_apis_as_wsk_does() {
        let s = spawn_server(None);
        let props = guest_props(&s);
        let wsk = |args: &[&str]| wsk_with(&props, args);
        let ok = |args: &[&str]| {
            let (code, stdout, stderr) = wsk(args);
            assert_eq!(code, 0, "{args:?}: {stderr}");
            stdout
        };
        let file = s.dir().join("book.js");
        std::fs::write(&file, BOOK).expect("write the action");
        let file = file.to_string_lossy().into_owned();
        ok(&["action", "create", "book", &file, "--web", "true"]);
        ok(&["action", "create", "plain", &file]);

        let out = ok(&[
            "api",
            "create",
            "/shop",
            "/items",
            "get",
            "book",
            "--apiname",
            "Shop",
        ]);
        let url = format!("{}/api/{GUEST_UUID}/shop/items", s.base());
        assert_eq!(
            out,
            format!("ok: created API /shop/items GET for action /_/book\n{url}\n")
        );
        let (code, _, stderr) = wsk(&["api", "create", "/shop", "/x", "get", "plain"]);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("Action '/_/plain' is not a web action."),
            "{stderr}"
        );
        let (code, _, stderr) = wsk(&["api", "create", "/shop", "/items/{id}", "get", "book"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("A response type of 'http' is required"),
            "{stderr}"
        );
        ok(&[
            "api",
            "create",
            "/shop",
            "/items/{id}",
            "delete",
            "book",
            "--response-type",
            "http",
        ]);

        let list = ok(&["api", "list", "--name-sort"]);
        let mut lines = list.lines();
        assert_eq!(lines.next(), Some("ok: APIs"));
        assert_eq!(
            lines
                .next()
                .map(str::split_whitespace)
                .map(Iterator::collect::<Vec<_>>),
            Some(vec!["Action", "Verb", "API", "Name", "URL"])
        );
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            rows,
            vec![
                vec!["/guest/book", "get", "Shop", url.as_str()],
                vec!["/guest/book", "delete", "Shop", &format!("{url}/{{id}}")],
            ],
            "{list}"
        );
        let swagger = ok(&["api", "get", "Shop"]);
        let doc: Value = serde_json::from_str(&swagger).expect("the swagger document");
        assert_eq!(doc["basePath"], "/shop");

        let r = send_raw(http().get(&url)).await;
        r.expect_status(200, "the CLI's route");
        let r = send_raw(http().delete(format!("{url}/9"))).await;
        r.expect_status(200, "DELETE with a path parameter");
        assert_eq!(r.body["id"], "9");

        assert_eq!(
            ok(&["api", "delete", "/shop", "/items/{id}", "delete"]),
            "ok: deleted /items/{id} DELETE from /shop\n"
        );
        assert_eq!(ok(&["api", "delete", "/shop"]), "ok: deleted API /shop\n");
        let (code, _, stderr) = wsk(&["api", "get", "/shop"]);
        assert_eq!(code, 1);
        assert!(
            stderr.contains("API does not exist for basepath /shop"),
            "{stderr}"
        );
        let (code, _, stderr) = wsk(&["api", "delete", "/shop"]);
        assert_eq!(code, 148, "{stderr}");

        // The swagger document `api get` printed creates the API again (`--config-file`).
        let config = s.dir().join("shop.json");
        std::fs::write(&config, &swagger).expect("write the swagger file");
        let out = ok(&["api", "create", "--config-file", &config.to_string_lossy()]);
        assert_eq!(
            out,
            format!(
                "ok: created API /shop/items get for action /guest/book\n{url}\n\
                 ok: created API /shop/items/{{id}} delete for action /guest/book\n{url}/{{id}}\n"
            )
        );
        send_raw(http().get(&url))
            .await
            .expect_status(200, "the swagger route");
    }
}
