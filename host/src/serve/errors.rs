//! The HTTP error envelope: every error answer is a flat
//! `{"detail": …, "code": …}` object (422s add `request_id` and `errors`,
//! 500s add `request_id`), with the request id in `X-Request-ID`.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

/// A refused request.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `code` field.
    pub code: &'static str,
    /// The `detail` field.
    pub detail: String,
    /// Per-field errors of a 422 (`{type, loc, msg}` objects).
    pub errors: Option<Vec<Value>>,
}

impl ApiError {
    /// An error without field details.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, code, detail: detail.into(), errors: None }
    }

    /// 422 VALIDATION_ERROR with its field errors.
    pub fn validation(errors: Vec<Value>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
            detail: "Request validation failed".into(),
            errors: Some(errors),
        }
    }

    /// 404 RECIPE_NOT_FOUND.
    pub fn recipe_not_found(name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "RECIPE_NOT_FOUND", format!("Recipe '{name}' not found"))
    }

    /// 503 RECIPE_UNAVAILABLE.
    pub fn recipe_unavailable(name: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "RECIPE_UNAVAILABLE", format!("Recipe '{name}' is registered but no model is loaded"))
    }

    /// 500 INTERNAL_ERROR.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal error")
    }

    /// The response, with the request id in the header (and in the body for
    /// 422 and 500).
    pub fn response(&self, request_id: &str) -> Response {
        let body = if let Some(errors) = &self.errors {
            json!({"request_id": request_id, "detail": self.detail, "code": self.code, "errors": errors})
        } else if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            json!({"detail": self.detail, "code": self.code, "request_id": request_id})
        } else {
            json!({"detail": self.detail, "code": self.code})
        };
        json_response(self.status, request_id, body.to_string().into_bytes())
    }
}

/// A JSON response with `X-Request-ID`.
pub fn json_response(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    response
}

/// One field error as pydantic reports it.
pub fn field_error(kind: &str, loc: Vec<Value>, msg: impl Into<String>) -> Value {
    json!({"type": kind, "loc": loc, "msg": msg.into()})
}
