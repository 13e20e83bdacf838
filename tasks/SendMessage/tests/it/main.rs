//! SendMessage against moto: every message is read back, from the queue it
//! was sent to, or for topics from an SQS queue subscribed to the topic.

use std::path::Path;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use test_support::{TaskEnv, block_on, sdk_config, unique};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sendmessage"))
}

fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config())
}

fn sns() -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(&sdk_config())
}

fn queue(name: &str, fifo: bool) -> String {
    let mut req = sqs().create_queue().queue_name(name);
    if fifo {
        req = req.attributes(QueueAttributeName::FifoQueue, "true");
    }
    block_on(req.send()).unwrap().queue_url.unwrap()
}

fn queue_arn(url: &str) -> String {
    block_on(
        sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send(),
    )
    .unwrap()
    .attributes
    .unwrap()[&QueueAttributeName::QueueArn]
        .clone()
}

/// Everything in the queue now (waiting up to `wait` for the first).
fn received(url: &str, wait: i32) -> Vec<aws_sdk_sqs::types::Message> {
    block_on(
        sqs()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send(),
    )
    .unwrap()
    .messages
    .unwrap_or_default()
}

#[test]
fn a_queue_gets_the_message_its_attributes_and_delay() {
    let url = queue(&unique("jobs"), false);
    let run = TaskEnv::moto()
        .input("messageTarget", "queue")
        .input("queueUrl", &url)
        .input("message", "{\"build\": 42,\n \"stage\": \"blue\"}")
        .input("messageAttributes", "stage=blue\nrequestedBy = Build 42")
        .input("delaySeconds", "2")
        .run(bin());
    run.assert_succeeded();
    assert!(
        run.stdout.contains(&format!(
            "Sending the message to queue {url}, delayed by 2 s."
        )),
        "{}",
        run.stdout
    );
    // Delayed: not there at once.
    assert!(received(&url, 0).is_empty());
    std::thread::sleep(Duration::from_millis(2500));
    let messages = received(&url, 2);
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.body(), Some("{\"build\": 42,\n \"stage\": \"blue\"}"));
    let attrs = m.message_attributes().unwrap();
    assert_eq!(attrs["stage"].string_value(), Some("blue"));
    assert_eq!(attrs["requestedBy"].string_value(), Some("Build 42"));
    assert_eq!(run.variable("messageId").as_deref(), m.message_id());
}

#[test]
fn a_topic_delivers_the_message_to_its_subscribers() {
    let topic = block_on(sns().create_topic().name(unique("deploys")).send())
        .unwrap()
        .topic_arn
        .unwrap();
    let url = queue(&unique("subscriber"), false);
    block_on(
        sns()
            .subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(queue_arn(&url))
            .send(),
    )
    .unwrap();
    let run = TaskEnv::moto()
        .input("topicArn", &topic)
        .input("message", "release 1.2.3 deployed")
        .input("messageAttributes", "env=prod")
        .run(bin());
    run.assert_succeeded();
    let messages = received(&url, 2);
    assert_eq!(messages.len(), 1);
    // SNS wraps the message for SQS subscribers.
    let envelope: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(envelope["Message"], "release 1.2.3 deployed");
    assert_eq!(envelope["TopicArn"], topic.as_str());
    assert_eq!(envelope["MessageAttributes"]["env"]["Value"], "prod");
    assert_eq!(
        run.variable("messageId").as_deref(),
        envelope["MessageId"].as_str()
    );
}

#[test]
fn a_fifo_queue_gets_the_group_and_deduplicates() {
    let url = queue(&format!("{}.fifo", unique("ordered")), true);
    let env = TaskEnv::moto()
        .input("messageTarget", "queue")
        .input("queueUrl", &url)
        .input("message", "step 1")
        .input("messageGroupId", "release-7")
        .input("messageDeduplicationId", "release-7-step-1");
    let first = env.run(bin());
    first.assert_succeeded();
    // The same deduplication id again: accepted, delivered once.
    env.run(bin()).assert_succeeded();
    let messages = received(&url, 1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let system = messages[0].attributes().unwrap();
    assert_eq!(
        system
            .get(&MessageSystemAttributeName::MessageGroupId)
            .map(String::as_str),
        Some("release-7")
    );
    // Without a group id nothing is sent.
    let run = TaskEnv::moto()
        .input("messageTarget", "queue")
        .input("queueUrl", &url)
        .input("message", "step 2")
        .run(bin());
    run.assert_failed_with("Input required: messageGroupId (the queue is FIFO");
    assert!(received(&url, 0).is_empty());
}

#[test]
fn a_missing_target_or_a_bad_value_sends_nothing() {
    let url = queue(&unique("guarded"), false);
    let missing = url.replace("guarded", "gone");
    TaskEnv::moto()
        .input("messageTarget", "queue")
        .input("queueUrl", &missing)
        .input("message", "m")
        .run(bin())
        .assert_failed_with(&format!(
            "Queue {missing} does not exist (in region us-east-1)."
        ));
    TaskEnv::moto()
        .input("topicArn", "arn:aws:sns:us-east-1:123456789012:no-such-topic")
        .input("message", "m")
        .run(bin())
        .assert_failed_with(
            "Topic arn:aws:sns:us-east-1:123456789012:no-such-topic does not exist (in region us-east-1).",
        );
    let run = TaskEnv::moto()
        .input("messageTarget", "queue")
        .input("queueUrl", &url)
        .input("message", "m")
        .input("delaySeconds", "901")
        .run(bin());
    run.assert_failed_with("delaySeconds");
    // Refused before any request: not even the credentials were resolved.
    assert!(!run.stdout.contains("AWS credentials:"), "{}", run.stdout);
    assert!(received(&url, 0).is_empty());
}
