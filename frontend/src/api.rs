//! Calls to the REST API. Errors come back as text fit to show: the API's `detail` when
//! there is one, else the HTTP status or the network failure.

use serde::de::DeserializeOwned;
use updraft_shared::api::HttpError;

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let res = gloo_net::http::Request::get(path)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("cannot reach the server: {e}"))?;
    if !res.ok() {
        let status = res.status();
        return Err(match res.json::<HttpError>().await {
            Ok(err) => format!("{status}: {}", err.detail),
            Err(_) => format!("HTTP {status} from {path}"),
        });
    }
    res.json::<T>()
        .await
        .map_err(|e| format!("unexpected answer from {path}: {e}"))
}
