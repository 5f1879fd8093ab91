"""Span attribute names: the one place each is spelled.

Recorded by the node runtime, compared by the replayer, matched by invariants and explorer
queries, mapped to OpenTelemetry by the exporter. Like OTel's semantic-convention constants,
a name that crosses modules is a constant here, so a rename is one edit and a typo is an
`AttributeError`, not a silently empty column. Names under `edgetrace.` are ours; the
`gen_ai.*`, `error.type`, `service.*`, `host.name` and `otel.scope.name` names are
OpenTelemetry's (GenAI and resource semantic conventions).
"""

from __future__ import annotations

from typing import Final

# --- what a step saw and produced -------------------------------------------------------------
PAYLOAD: Final = "edgetrace.payload"  # preview of an input, message or reply
OUTPUT: Final = "edgetrace.output"  # what a model step returned to the handler
OUTPUT_TEXT: Final = "edgetrace.output.text"  # a generative model's decoded text
MESSAGE: Final = "edgetrace.message"  # ctx.log text

# --- models ---------------------------------------------------------------------------------
MODEL_SHA256: Final = "edgetrace.model.sha256"
MODEL_OPTIONS: Final = "edgetrace.model.options"  # runner settings that affect outputs

# --- rule decisions -------------------------------------------------------------------------
POLICY: Final = "edgetrace.policy"
POLICY_SHA256: Final = "edgetrace.policy.sha256"
POLICY_ENGINE: Final = "edgetrace.policy.engine"
DECISION: Final = "edgetrace.decision"
RULES_FIRED: Final = "edgetrace.rules_fired"
TIMED_OUT: Final = "edgetrace.timed_out"

# --- state and actuation --------------------------------------------------------------------
STATE_PREFIX: Final = "edgetrace.state."
STATE_KEY: Final = "edgetrace.state.key"
STATE_VALUE: Final = "edgetrace.state.value"
ACT_ARGS: Final = "edgetrace.act.args"
ACT_EXECUTED: Final = "edgetrace.act.executed"

# --- where in the app -------------------------------------------------------------------------
CODE: Final = "edgetrace.code"  # file.py:line of the app code that issued a step (or raised)
LOCAL: Final = "edgetrace.local"  # the handler had used ctx.local by this step (node memory)
EXCEPTION_TYPE: Final = "exception.type"  # OpenTelemetry's exception attributes
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"

# --- messages -------------------------------------------------------------------------------
TO: Final = "edgetrace.to"
FROM: Final = "edgetrace.from"
TOPIC: Final = "edgetrace.topic"
CALL_ID: Final = "edgetrace.call_id"
TIMEOUT_S: Final = "edgetrace.timeout_s"
LATE: Final = "edgetrace.late"  # a reply that arrived after its caller gave up

# --- state snapshots (replay from a consistent cut: edgetrace._snapshot) ------------------------
SNAPSHOT_ROUND: Final = "edgetrace.snapshot.round"  # which period boundary it was taken for
SNAPSHOT_BYTES: Final = "edgetrace.snapshot.bytes"  # size of the encoded state document

# --- injected faults (replay only) ----------------------------------------------------------
FAULT: Final = "edgetrace.fault"  # the fault spec, or what it did
FAULT_SPEC: Final = "edgetrace.fault.spec"
FAULT_MODE: Final = "edgetrace.fault.mode"
FAULT_MESSAGE: Final = "edgetrace.fault.message"  # ref of the message a network fault hit
FAULT_TO: Final = "edgetrace.fault.to"
FAULT_UNTIL_NS: Final = "edgetrace.fault.until_ns"

# --- foreign (OTLP-ingested) spans and their export --------------------------------------------
UNTIMED: Final = "edgetrace.untimed"  # no causal clock: ordered by timestamp only
ORDER: Final = "edgetrace.order"
NODE: Final = "edgetrace.node"
SEQ: Final = "edgetrace.seq"
KIND: Final = "edgetrace.kind"
TRACE: Final = "edgetrace.trace"
PARENT: Final = "edgetrace.parent"
CAUSE: Final = "edgetrace.cause"
SCENARIO: Final = "edgetrace.scenario"
SESSION_ID: Final = "edgetrace.session.id"
VCLOCK: Final = "edgetrace.vclock"
LINK: Final = "edgetrace.link"
BLOB_PREFIX: Final = "edgetrace.blob."
OTEL_SPAN_ID: Final = "edgetrace.otel.span_id"
OTEL_PARENT_SPAN_ID: Final = "edgetrace.otel.parent_span_id"
OTEL_KIND: Final = "edgetrace.otel.kind"
OTEL_EVENTS: Final = "edgetrace.otel.events"
OTEL_LINKS: Final = "edgetrace.otel.links"

# --- OpenTelemetry's own names ----------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
SERVICE_VERSION: Final = "service.version"
HOST_NAME: Final = "host.name"
OTEL_SCOPE_NAME: Final = "otel.scope.name"
ERROR_TYPE: Final = "error.type"
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"  # opt-in content (GenAI conventions)
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
SERVICE_NAMESPACE: Final = "service.namespace"

# --- OpenInference's names (what Phoenix and other LLM backends read) ------------------------
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_PROJECT_NAME: Final = "openinference.project.name"  # a resource attribute
OI_INPUT_VALUE: Final = "input.value"
OI_INPUT_MIME_TYPE: Final = "input.mime_type"
OI_OUTPUT_VALUE: Final = "output.value"
OI_OUTPUT_MIME_TYPE: Final = "output.mime_type"
OI_SESSION_ID: Final = "session.id"
OI_METADATA: Final = "metadata"
OI_TAGS: Final = "tag.tags"
OI_LLM_MODEL_NAME: Final = "llm.model_name"
OI_LLM_PROVIDER: Final = "llm.provider"
OI_LLM_TOKENS_PROMPT: Final = "llm.token_count.prompt"
OI_LLM_TOKENS_COMPLETION: Final = "llm.token_count.completion"
OI_LLM_TOKENS_TOTAL: Final = "llm.token_count.total"
OI_LLM_INPUT_MESSAGES: Final = "llm.input_messages"  # then .{i}.message.role / .content
OI_LLM_OUTPUT_MESSAGES: Final = "llm.output_messages"
OI_TOOL_NAME: Final = "tool.name"

#: Short names the invariant and query languages accept for the most-read attributes.
SHORTHANDS: Final[dict[str, str]] = {
    "output": OUTPUT,
    "decision": DECISION,
    "fired": RULES_FIRED,
    "args": ACT_ARGS,
    "payload": PAYLOAD,
}
