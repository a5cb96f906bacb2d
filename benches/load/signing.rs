//! `load sign-rates`: how many tokens oxidp's key manager signs and verifies per second with one
//! thread, for each algorithm it offers (issue #7 item 4), next to `openssl speed` for the same
//! algorithm (measured by run.sh). The claims are a typical access token's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub fn run(seconds: f64) -> Result<Value, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(measure(Duration::from_secs_f64(seconds)))
}

async fn measure(each: Duration) -> Result<Value, String> {
    let db = oxidp::store::Db::connect("sqlite::memory:").await.map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    let secret = oxidp::crypto::ServerSecret::from_bytes(&[7; 32]);
    let clock: oxidp::clock::SharedClock = Arc::new(oxidp::clock::SystemClock);
    let algs: Vec<String> = oxidp::keys::SUPPORTED_ALGS.iter().map(|alg| alg.to_string()).collect();
    let keys = oxidp::keys::KeyManager::new(db, secret, clock, 2048, algs, 330, 900);
    keys.bootstrap().await.map_err(|e| e.to_string())?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs() as i64;
    let claims = json!({
        "iss": "https://id.example.com", "sub": "3f1e6a0c-2b9d-4c8e-9f00-5a6b7c8d9e0f", "aud": "https://api.example.com",
        "exp": now + 900, "iat": now, "jti": "Zm9vYmFyYmF6cXV1eDEyMzQ", "client_id": "c2VydmljZS1jbGllbnQtMDAx",
        "scope": "openid profile email api"
    });
    let claims = claims.as_object().cloned().unwrap_or_default();
    let mut rates = Vec::new();
    for alg in oxidp::keys::SUPPORTED_ALGS {
        let (mut signed, started) = (0u64, Instant::now());
        let mut token = String::new();
        while started.elapsed() < each {
            token = keys.sign_with(alg, "at+jwt", &claims).map_err(|e| e.to_string())?;
            signed += 1;
        }
        let sign_per_s = signed as f64 / started.elapsed().as_secs_f64();
        let (mut verified, started) = (0u64, Instant::now());
        while started.elapsed() < each {
            keys.verify(&token).map_err(|e| e.to_string())?;
            verified += 1;
        }
        let verify_per_s = verified as f64 / started.elapsed().as_secs_f64();
        println!("{alg:>6}: {sign_per_s:>9.0} sign/s  {verify_per_s:>9.0} verify/s  ({} bytes)", token.len());
        rates.push(
            json!({ "alg": alg, "sign_per_s": sign_per_s, "verify_per_s": verify_per_s, "token_bytes": token.len() }),
        );
    }
    Ok(json!({ "seconds_each": each.as_secs_f64(), "algorithms": rates }))
}
