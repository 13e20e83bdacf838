//! Everything about an object but its body: content type (guessed from the
//! name unless given), cache control (the first matching rule), encoding,
//! storage class, ACL, server-side encryption.

use crate::params::Params;
use crate::plan::Item;

/// Everything about an object but its body.
#[derive(Clone)]
pub(crate) struct Headers {
    pub(crate) content_type: String,
    pub(crate) cache_control: Option<String>,
}

pub(crate) fn headers_for(p: &Params, item: &Item) -> Headers {
    let content_type = p.content_type.clone().unwrap_or_else(|| {
        mime_guess::from_path(&item.rel)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_string()
    });
    let cache_control = p
        .cache_control
        .iter()
        .find(|(glob, _)| glob.any(&item.rel))
        .map(|(_, v)| v.clone());
    Headers {
        content_type,
        cache_control,
    }
}

/// The headers every object request carries: type, cache control,
/// encoding, storage class, ACL and encryption.
macro_rules! apply_common {
    ($req:expr, $p:expr, $h:expr) => {{
        let mut req = $req
            .content_type(&$h.content_type)
            .set_cache_control($h.cache_control.clone())
            .set_content_encoding($p.content_encoding.clone())
            .storage_class($p.storage_class.clone())
            .set_acl($p.acl.clone());
        req = match &$p.sse {
            $crate::params::Sse::None => req,
            $crate::params::Sse::Aes256 => {
                req.server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
            }
            $crate::params::Sse::Kms { key_id } => req
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(key_id.clone()),
            $crate::params::Sse::Customer(k) => req
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.key_b64)
                .sse_customer_key_md5(&k.md5_b64),
        };
        req
    }};
}

pub(crate) use apply_common;
