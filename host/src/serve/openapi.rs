//! The OpenAPI 3.1 document of the `/v1` API, served at `/openapi.json`
//! only when `RECOTEM_ENV` is development, dev or test.

use serde_json::{Value, json};

/// The document.
pub fn document() -> Value {
    let error = json!({"$ref": "#/components/schemas/Error"});
    let verb = |summary: &str, body: &str, reply: &str| {
        json!({
            "post": {
                "summary": summary,
                "security": [{"ApiKey": []}],
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}},
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{reply}")}}}},
                    "401": {"description": "MISSING_API_KEY or INVALID_API_KEY", "content": {"application/json": {"schema": error}}},
                    "404": {"description": "RECIPE_NOT_FOUND, UNKNOWN_USER, UNKNOWN_SEED_ITEMS or NO_CANDIDATES", "content": {"application/json": {"schema": error}}},
                    "422": {"description": "VALIDATION_ERROR", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationError"}}}},
                    "503": {"description": "RECIPE_UNAVAILABLE", "content": {"application/json": {"schema": error}}}
                }
            }
        })
    };
    let ids = |max: u32| json!({"type": "array", "maxItems": max, "items": {"type": "string", "minLength": 1, "maxLength": 256}});
    let limit = json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 10});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "recotem", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            "/v1/health": {"get": {"summary": "Liveness/readiness: 200 when every recipe has a model, else 503", "responses": {"200": {"description": "ok"}, "503": {"description": "degraded"}}}},
            "/v1/health/details": {"get": {"summary": "Per-recipe load state", "security": [{"ApiKey": []}], "responses": {"200": {"description": "ok"}, "503": {"description": "degraded"}}}},
            "/v1/recipes": {"get": {"summary": "Loaded recipes", "security": [{"ApiKey": []}], "responses": {"200": {"description": "OK"}}}},
            "/v1/recipes/{name}": {"get": {"summary": "One recipe's model facts", "security": [{"ApiKey": []}], "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"200": {"description": "OK"}, "404": {"description": "RECIPE_NOT_FOUND"}, "503": {"description": "RECIPE_UNAVAILABLE"}}}},
            "/v1/recipes/{name}:recommend": verb("Items for a known user", "Recommend", "Items"),
            "/v1/recipes/{name}:recommend-related": verb("Items related to seed items", "RecommendRelated", "Items"),
            "/v1/recipes/{name}:batch-recommend": verb("Up to 256 :recommend queries", "Batch", "Results"),
            "/v1/recipes/{name}:batch-recommend-related": verb("Up to 256 :recommend-related queries", "Batch", "Results")
        },
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {
                "Recommend": {"type": "object", "additionalProperties": false, "required": ["user_id"], "properties": {"user_id": {"type": "string", "minLength": 1, "maxLength": 256}, "limit": limit, "exclude_items": ids(1000)}},
                "RecommendRelated": {"type": "object", "additionalProperties": false, "required": ["seed_items"], "properties": {"seed_items": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 256}}, "limit": limit, "exclude_items": ids(1000)}},
                "Batch": {"type": "object", "additionalProperties": false, "required": ["requests"], "properties": {"requests": {"type": "array", "minItems": 1, "maxItems": 256, "items": {"type": "object"}}, "include_metadata": {"type": "boolean", "default": false}}},
                "Item": {"type": "object", "required": ["item_id", "score"], "properties": {"item_id": {"type": "string"}, "score": {"type": "number"}}, "additionalProperties": {"type": "string"}},
                "Items": {"type": "object", "properties": {"request_id": {"type": "string"}, "recipe": {"type": "string"}, "model_version": {"type": "string"}, "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}}},
                "Results": {"type": "object", "properties": {"request_id": {"type": "string"}, "recipe": {"type": "string"}, "model_version": {"type": "string"}, "results": {"type": "array", "items": {"type": "object", "properties": {"index": {"type": "integer"}, "status": {"enum": ["ok", "error"]}, "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}, "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}}},
                "Error": {"type": "object", "required": ["detail", "code"], "properties": {"detail": {"type": "string"}, "code": {"type": "string"}}},
                "ValidationError": {"type": "object", "properties": {"request_id": {"type": "string"}, "detail": {"type": "string"}, "code": {"const": "VALIDATION_ERROR"}, "errors": {"type": "array", "items": {"type": "object", "properties": {"type": {"type": "string"}, "loc": {"type": "array"}, "msg": {"type": "string"}}}}}}
            }
        }
    })
}
