//! API tokens: HS512 JWTs with `sub` (the username), `role`, `iat`, `nbf`, `exp` and `jti`.

use std::time::Duration;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Role;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub aud: String,
}

/// Airflow's audience claim.
const AUDIENCE: &str = "apache-airflow";

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS512);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "sub", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    pub fn issue(&self, username: &str, role: Role) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: username.to_string(),
            role: role.as_str().to_string(),
            iat: now,
            nbf: now,
            exp: now + self.lifetime.as_secs() as i64,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            aud: AUDIENCE.to_string(),
        };
        encode(&Header::new(Algorithm::HS512), &claims, &self.encoding)
            .expect("HS512 signing of plain claims cannot fail")
    }

    /// The claims of a valid token, or why it is not.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        use jsonwebtoken::errors::ErrorKind;
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "it has expired".to_string(),
                ErrorKind::ImmatureSignature => "it is not valid yet".to_string(),
                ErrorKind::InvalidSignature => "its signature does not match".to_string(),
                _ => "it is malformed".to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let t = keys.issue("ada", Role::Op);
        let c = keys.verify(&t).unwrap();
        assert_eq!((c.sub.as_str(), c.role.as_str()), ("ada", "Op"));
        assert_eq!(c.exp - c.iat, 60);
        let other = TokenKeys::new(b"another-key-another-key-another!", Duration::from_secs(60));
        assert!(other.verify(&t).unwrap_err().contains("signature"));
        assert!(keys.verify("abc").is_err());
        let mut expired = TokenKeys::new(b"0123456789abcdef0123456789abcdef", Duration::ZERO);
        expired.validation.leeway = 0;
        let old = expired.issue("ada", Role::Op);
        std::thread::sleep(Duration::from_millis(1100));
        assert!(expired.verify(&old).unwrap_err().contains("expired"));
    }
}
