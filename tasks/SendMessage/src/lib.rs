//! SendMessage: sends `message` to an SNS topic (`topicArn`) or an SQS
//! queue (`queueUrl`, with `delaySeconds`), as the AWS Toolkit task of the
//! same name does: the topic or queue is checked first, and a missing one
//! is named.
//!
//! Beyond the original: message attributes (`messageAttributes`, one
//! `name=value` per line, sent as strings), FIFO topics and queues
//! (`messageGroupId`, `messageDeduplicationId`), and the message id in the
//! output variable `messageId`. Every value is checked before anything is
//! sent: a delay over 900 s, a body over 256 KiB, a FIFO target without a
//! group id or with a delay fail naming the input.

use std::collections::HashMap;

use anyhow::{Result, bail};
use vsts_aws_common::{AwsSetup, SdkResultExt};
use vsts_task::limits::{Limit, ceiling, line, lines};
use vsts_task::{Task, VariableOptions};

/// SNS and SQS both take at most 256 KiB, body and attributes together.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Topic(String),
    Queue { url: String, delay: Option<i32> },
}

impl Target {
    fn fifo(&self) -> bool {
        match self {
            Target::Topic(arn) => arn.ends_with(".fifo"),
            Target::Queue { url, .. } => url.ends_with(".fifo"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub target: Target,
    pub message: String,
    pub attributes: Vec<(String, String)>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
}

impl Params {
    /// Every input error surfaces here, before anything is sent.
    pub fn from_task(task: &Task) -> Result<Self> {
        let inputs = task.inputs();
        let target = match inputs.pick("messageTarget", &["topic", "queue"])? {
            None | Some("topic") => Target::Topic(inputs.required("topicArn")?),
            Some(_) => Target::Queue {
                url: inputs.required("queueUrl")?,
                delay: inputs.int("delaySeconds", 0..=900)?.map(|d| d as i32),
            },
        };
        let message = inputs.required("message")?;
        let attributes = inputs.key_values("messageAttributes")?;
        let size = message.len()
            + attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + "String".len())
                .sum::<usize>();
        if size > MAX_MESSAGE_BYTES {
            bail!(
                "Input 'message': the message (with its attributes) is {size} bytes; SNS and SQS take at most \
                 {MAX_MESSAGE_BYTES} bytes (256 KiB). Send a larger payload through S3 and put its location in the message."
            );
        }
        let group_id = inputs.get("messageGroupId");
        let deduplication_id = inputs.get("messageDeduplicationId");
        if target.fifo() {
            if group_id.is_none() {
                bail!(
                    "Input required: messageGroupId (the {} is FIFO: its name ends in .fifo)",
                    target_kind(&target)
                );
            }
            if let Target::Queue { delay: Some(_), .. } = target {
                bail!(
                    "Input 'delaySeconds': a FIFO queue takes no delay per message; set the queue's own delivery delay instead."
                );
            }
        } else {
            for (name, value) in [
                ("messageGroupId", &group_id),
                ("messageDeduplicationId", &deduplication_id),
            ] {
                // SQS takes a group id on standard queues (fair queues);
                // a deduplication id only means something on FIFO targets.
                if value.is_some()
                    && (name == "messageDeduplicationId" || matches!(target, Target::Topic(_)))
                {
                    bail!(
                        "Input '{name}': only FIFO {}s (names ending in .fifo) take it.",
                        target_kind(&target)
                    );
                }
            }
        }
        Ok(Params {
            target,
            message,
            attributes,
            group_id,
            deduplication_id,
        })
    }
}

fn target_kind(target: &Target) -> &'static str {
    match target {
        Target::Topic(_) => "topic",
        Target::Queue { .. } => "queue",
    }
}

/// What each free-text input may hold, checked before anything else. The
/// message's own limit is its size in bytes, checked with its attributes.
pub const INPUT_LIMITS: &[Limit] = &[
    lines("message", MAX_MESSAGE_BYTES, "the message, up to 256 KiB"),
    line("topicArn", ceiling::ARN, "an SNS topic ARN"),
    line("queueUrl", ceiling::URL, "an SQS queue URL"),
    line(
        "delaySeconds",
        ceiling::NUMBER,
        "a number of seconds, 0 to 900",
    ),
    lines("messageAttributes", ceiling::TEXT, "name=value lines"),
    line(
        "messageGroupId",
        128,
        "a message group id of up to 128 characters",
    ),
    line(
        "messageDeduplicationId",
        128,
        "a deduplication id of up to 128 characters",
    ),
];

pub async fn run(task: Task) -> Result<()> {
    vsts_aws_common::check_inputs(&task, INPUT_LIMITS)?;
    let params = Params::from_task(&task)?;
    let setup = vsts_aws_common::configure(&task).await?;
    execute(&task, &setup, &params).await
}

pub async fn execute(task: &Task, setup: &AwsSetup, p: &Params) -> Result<()> {
    let console = &task.console;
    let id = match &p.target {
        Target::Topic(arn) => send_to_topic(task, setup, p, arn).await?,
        Target::Queue { url, delay } => send_to_queue(task, setup, p, url, *delay).await?,
    };
    console.set_variable(
        "messageId",
        &id,
        VariableOptions {
            output: true,
            ..Default::default()
        },
    );
    console.info(&format!(
        "Message {id} sent to the {} {}; output variable messageId.",
        target_kind(&p.target),
        match &p.target {
            Target::Topic(arn) => arn,
            Target::Queue { url, .. } => url,
        }
    ));
    Ok(())
}

async fn send_to_topic(task: &Task, setup: &AwsSetup, p: &Params, arn: &str) -> Result<String> {
    use aws_sdk_sns::types::MessageAttributeValue;
    let client = vsts_aws_common::client!(aws_sdk_sns, task, setup);
    if let Err(e) = client.get_topic_attributes().topic_arn(arn).send().await {
        if vsts_aws_common::is_not_found(&e) {
            bail!("Topic {arn} does not exist (in region {}).", setup.region);
        }
        return Err(e).sdk_context(|| format!("Checking the topic {arn}"));
    }
    task.console
        .info(&format!("Sending the message to topic {arn}."));
    let mut attributes = HashMap::new();
    for (name, value) in &p.attributes {
        attributes.insert(
            name.clone(),
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()?,
        );
    }
    let out = client
        .publish()
        .topic_arn(arn)
        .message(&p.message)
        .set_message_attributes((!attributes.is_empty()).then_some(attributes))
        .set_message_group_id(p.group_id.clone())
        .set_message_deduplication_id(p.deduplication_id.clone())
        .send()
        .await
        .sdk_context(|| format!("Sending the message to topic {arn}"))?;
    Ok(out.message_id.unwrap_or_default())
}

async fn send_to_queue(
    task: &Task,
    setup: &AwsSetup,
    p: &Params,
    url: &str,
    delay: Option<i32>,
) -> Result<String> {
    use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
    let client = vsts_aws_common::client!(aws_sdk_sqs, task, setup);
    if let Err(e) = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
    {
        if vsts_aws_common::is_not_found(&e) {
            bail!("Queue {url} does not exist (in region {}).", setup.region);
        }
        return Err(e).sdk_context(|| format!("Checking the queue {url}"));
    }
    match delay {
        Some(d) => task.console.info(&format!(
            "Sending the message to queue {url}, delayed by {d} s."
        )),
        None => task
            .console
            .info(&format!("Sending the message to queue {url}.")),
    }
    let mut attributes = HashMap::new();
    for (name, value) in &p.attributes {
        attributes.insert(
            name.clone(),
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()?,
        );
    }
    let out = client
        .send_message()
        .queue_url(url)
        .message_body(&p.message)
        .set_delay_seconds(delay)
        .set_message_attributes((!attributes.is_empty()).then_some(attributes))
        .set_message_group_id(p.group_id.clone())
        .set_message_deduplication_id(p.deduplication_id.clone())
        .send()
        .await
        .sdk_context(|| format!("Sending the message to queue {url}"))?;
    Ok(out.message_id.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsts_task::{Console, Env};

    fn params(pairs: &[(&str, &str)]) -> Result<Params> {
        let (c, _) = Console::capture(false);
        Params::from_task(&Task::new(
            "SendMessage",
            Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            c,
        ))
    }

    const QUEUE: (&str, &str) = ("INPUT_MESSAGETARGET", "queue");

    #[test]
    fn values_out_of_range_fail_naming_the_input() {
        let err = |pairs: &[(&str, &str)]| params(pairs).unwrap_err().to_string();
        let url = ("INPUT_QUEUEURL", "http://q/123/jobs");
        let msg = ("INPUT_MESSAGE", "hello");
        let p = params(&[QUEUE, url, msg, ("INPUT_DELAYSECONDS", "900")]).unwrap();
        assert_eq!(
            p.target,
            Target::Queue {
                url: "http://q/123/jobs".into(),
                delay: Some(900)
            }
        );
        assert!(err(&[QUEUE, url, msg, ("INPUT_DELAYSECONDS", "901")]).contains("delaySeconds"));
        let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert!(err(&[QUEUE, url, ("INPUT_MESSAGE", &big)]).starts_with("Input 'message'"));
        // Attributes count towards the size.
        let most = "x".repeat(MAX_MESSAGE_BYTES - 10);
        assert!(
            err(&[
                QUEUE,
                url,
                ("INPUT_MESSAGE", &most),
                ("INPUT_MESSAGEATTRIBUTES", "k=0123456789")
            ])
            .starts_with("Input 'message'")
        );
        assert!(err(&[QUEUE, url]).contains("message"));
        assert!(err(&[msg]).contains("topicArn"));
        let fifo = ("INPUT_QUEUEURL", "http://q/123/jobs.fifo");
        assert_eq!(
            err(&[QUEUE, fifo, msg]),
            "Input required: messageGroupId (the queue is FIFO: its name ends in .fifo)"
        );
        assert!(
            err(&[
                QUEUE,
                fifo,
                msg,
                ("INPUT_MESSAGEGROUPID", "g"),
                ("INPUT_DELAYSECONDS", "5")
            ])
            .starts_with("Input 'delaySeconds'")
        );
        assert!(
            err(&[QUEUE, url, msg, ("INPUT_MESSAGEDEDUPLICATIONID", "d")])
                .starts_with("Input 'messageDeduplicationId'")
        );
        assert!(
            err(&[
                ("INPUT_TOPICARN", "arn:aws:sns:us-east-1:1:t"),
                msg,
                ("INPUT_MESSAGEGROUPID", "g")
            ])
            .starts_with("Input 'messageGroupId'")
        );
        let p = params(&[
            ("INPUT_TOPICARN", "arn:aws:sns:us-east-1:1:t"),
            msg,
            ("INPUT_MESSAGEATTRIBUTES", "stage=blue\nbuild=42"),
        ])
        .unwrap();
        assert_eq!(
            p.attributes,
            [
                ("stage".into(), "blue".into()),
                ("build".into(), "42".into())
            ]
        );
    }
}
