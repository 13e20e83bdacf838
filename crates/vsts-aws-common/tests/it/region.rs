//! Region precedence, read back from the SigV4 credential scope of the call
//! the SDK really made.

use crate::*;

fn keys() -> E {
    E::new()
        .set("AWS_ACCESS_KEY_ID", "AKIAREGION00000001")
        .set("AWS_SECRET_ACCESS_KEY", "region-secret")
}

#[test]
fn region_precedence_table() {
    let public = ("VSTS_PUBLIC_VARIABLES", r#"["AWS.Region","System.Debug"]"#);
    // (environment, region used, source named)
    let cases: Vec<(Pairs, &str, &str)> = vec![
        // The task input wins over an AWS_REGION set on the machine (EKS pods).
        (
            vec![
                ("INPUT_REGIONNAME", "eu-west-1"),
                ("AWS_REGION", "us-east-1"),
            ],
            "eu-west-1",
            "task input regionName",
        ),
        (
            vec![
                ("INPUT_REGIONNAME", "eu-west-1"),
                ("AWS_REGION", "us-east-1"),
                public,
            ],
            "eu-west-1",
            "task input regionName",
        ),
        (
            vec![
                ("AWS_REGION", "ca-central-1"),
                public,
                ("AWS_DEFAULT_REGION", "us-east-1"),
            ],
            "ca-central-1",
            "pipeline variable AWS.Region",
        ),
        (
            vec![
                ("SECRET_AWS_REGION", "eu-north-1"),
                ("AWS_DEFAULT_REGION", "us-east-1"),
            ],
            "eu-north-1",
            "pipeline variable AWS.Region",
        ),
        (
            vec![
                ("AWS_REGION", "us-west-2"),
                ("AWS_DEFAULT_REGION", "us-east-1"),
            ],
            "us-west-2",
            "environment variable AWS_REGION",
        ),
        (
            vec![("AWS_DEFAULT_REGION", "me-south-1")],
            "me-south-1",
            "environment variable AWS_DEFAULT_REGION",
        ),
    ];
    for (pairs, region, source) in cases {
        let p = proxy();
        let mut e = keys().endpoint(&p.url);
        for (k, v) in &pairs {
            e = e.set(k, v);
        }
        let run = e.run();
        run.assert_succeeded();
        assert_eq!(
            signer(&last_call(&p, "GetCallerIdentity")).unwrap().1,
            region,
            "{pairs:?}"
        );
        assert!(
            described(&run).ends_with(&format!("region {region} ({source})")),
            "{pairs:?}: {}",
            described(&run)
        );
    }
}

#[test]
fn no_region_is_an_error_that_names_every_way() {
    let p = proxy();
    let run = keys().endpoint(&p.url).run();
    run.assert_failed_with("No AWS region is set");
    assert!(p.requests().is_empty());
}

#[test]
fn a_malformed_region_input_is_named() {
    keys().region("eu west").run().assert_failed_with(
        "The region 'eu west' from the task input regionName is not a region code",
    );
}
