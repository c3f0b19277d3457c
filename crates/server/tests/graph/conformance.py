"""Drives Countersign's Graph-compatible API with the real, unmodified Microsoft Graph beta
Python SDK (msgraph-beta-sdk from PyPI). Run by crates/server/tests/graph/main.rs, which starts
the server and passes:

  COUNTERSIGN_GRAPH_BASE      http://127.0.0.1:PORT (the SDK's base URL is this + /beta)
  COUNTERSIGN_GRAPH_REQUESTER alice's bearer token (she proposes)
  COUNTERSIGN_GRAPH_APPROVER  bob's bearer token (he approves)
  COUNTERSIGN_GRAPH_OPEN      ids of three open requests by alice, comma-separated
  COUNTERSIGN_GRAPH_OBJECT    the id of the object the first open request changes

Prints one line per check and exits non-zero on the first failure.
"""

import asyncio
import os
import sys
import time
from urllib.parse import urlparse

from azure.core.credentials import AccessToken
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph_beta import GraphRequestAdapter, GraphServiceClient
from msgraph_beta.generated.device_management.operation_approval_requests.cancel_my_request.cancel_my_request_post_request_body import (
    CancelMyRequestPostRequestBody,
)
from msgraph_beta.generated.device_management.operation_approval_requests.item.approve.approve_post_request_body import (
    ApprovePostRequestBody,
)
from msgraph_beta.generated.device_management.operation_approval_requests.operation_approval_requests_request_builder import (
    OperationApprovalRequestsRequestBuilder,
)
from msgraph_beta.generated.device_management.operation_approval_requests.retrieve_request_status.retrieve_request_status_post_request_body import (
    RetrieveRequestStatusPostRequestBody,
)
from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_beta.generated.models.operation_approval_policy_type import OperationApprovalPolicyType
from msgraph_beta.generated.models.operation_approval_request_status import OperationApprovalRequestStatus
from msgraph_beta.generated.models.operation_approval_source import OperationApprovalSource
from kiota_abstractions.base_request_configuration import RequestConfiguration


class StaticToken:
    """A TokenCredential that hands out one Countersign bearer token."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None):
        return self.get_token(*scopes)


def client(base, token):
    host = urlparse(base).hostname
    auth = AzureIdentityAuthenticationProvider(StaticToken(token), scopes=["countersign"], allowed_hosts=[host])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = base + "/beta"
    return GraphServiceClient(request_adapter=adapter)


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


async def main():
    base = os.environ["COUNTERSIGN_GRAPH_BASE"]
    alice = client(base, os.environ["COUNTERSIGN_GRAPH_REQUESTER"])
    bob = client(base, os.environ["COUNTERSIGN_GRAPH_APPROVER"])
    first, second, third = os.environ["COUNTERSIGN_GRAPH_OPEN"].split(",")
    entity = os.environ["COUNTERSIGN_GRAPH_OBJECT"]
    requests = lambda c: c.device_management.operation_approval_requests

    # List pending requests with a $filter.
    query = OperationApprovalRequestsRequestBuilder.OperationApprovalRequestsRequestBuilderGetQueryParameters(
        filter="status eq 'needsApproval'", orderby=["requestDateTime desc"], top=50
    )
    pending = await requests(bob).get(request_configuration=RequestConfiguration(query_parameters=query))
    ids = [r.id for r in pending.value]
    check({first, second, third} <= set(ids), "$filter=status eq 'needsApproval' lists the open requests")
    check(
        all(r.status == OperationApprovalRequestStatus.NeedsApproval for r in pending.value),
        "every listed request is needsApproval",
    )

    # Read one.
    one = await requests(bob).by_operation_approval_request_id(first).get()
    check(one.id == first and one.status == OperationApprovalRequestStatus.NeedsApproval, "reads one request")
    check(one.requestor.user.display_name == "alice", "the requestor is alice, a user identity")
    check(bool(one.request_justification), "the request carries its justification")
    check(one.required_operation_approval_policy_types == [OperationApprovalPolicyType.App], "policy type is app")
    check(one.request_date_time is not None and one.expiration_date_time is not None, "times parse")

    # retrieveRequestStatus: locked while open.
    status = await requests(alice).retrieve_request_status.post(
        RetrieveRequestStatusPostRequestBody(entity_id=entity, entity_type="app")
    )
    check(status.entity_locked is True and status.request_id == first, "entityLocked is true while a request is open")
    check(status.request_status == OperationApprovalRequestStatus.NeedsApproval, "requestStatus is needsApproval")

    # A self-approval through the SDK fails with a Graph-shaped 403.
    try:
        await requests(alice).by_operation_approval_request_id(first).approve.post(
            ApprovePostRequestBody(justification="mine", approval_source=OperationApprovalSource.AdminConsole)
        )
        check(False, "self-approval is refused")
    except ODataError as e:
        check(e.response_status_code == 403, f"self-approval is refused with 403 (got {e.response_status_code})")
        check(e.error is not None and e.error.code == "accessDenied", "the error has Graph's shape and code")
        check("own" in (e.error.message or "") or bool(e.error.message), f"with a message: {e.error.message}")

    # Approve as an approver with a justification, and see the status change.
    answer = await requests(bob).by_operation_approval_request_id(first).approve.post(
        ApprovePostRequestBody(justification="checked the diff", approval_source=OperationApprovalSource.AdminConsole)
    )
    check(answer.value == "approved", f"approve answers a value ({answer.value})")
    after = await requests(bob).by_operation_approval_request_id(first).get()
    check(after.status == OperationApprovalRequestStatus.Approved, "the status changed to approved")
    check(after.approver.user.display_name == "bob", "the approver is bob")
    check(after.approval_justification == "checked the diff", "the approver's justification is kept")

    # As the requester: retrieveMyRequests, then cancelMyRequest.
    mine = await requests(alice).retrieve_my_requests.get()
    check({first, second, third} <= {r.id for r in mine.value}, "retrieveMyRequests lists alice's requests")
    theirs = await requests(bob).retrieve_my_requests.get()
    check(not ({first, second, third} & {r.id for r in theirs.value}), "bob's own requests do not include alice's")
    by_id = await requests(alice).retrieve_my_request_by_id_with_id(second).get()
    check(by_id.id == second, "retrieveMyRequestById reads one of alice's requests")
    await requests(alice).cancel_my_request.post(CancelMyRequestPostRequestBody(id=first))
    cancelled = await requests(alice).by_operation_approval_request_id(first).get()
    check(cancelled.status == OperationApprovalRequestStatus.Cancelled, "cancelMyRequest cancelled it")

    # retrieveRequestStatus: unlocked once nothing is open.
    status = await requests(alice).retrieve_request_status.post(
        RetrieveRequestStatusPostRequestBody(entity_id=entity, entity_type="app")
    )
    check(status.entity_locked is False, "entityLocked is false after the request closed")
    check(status.request_status == OperationApprovalRequestStatus.Cancelled, "requestStatus is cancelled")

    # Policies and their policySet.
    policies = await bob.device_management.operation_approval_policies.get()
    check(len(policies.value) >= 3, f"lists {len(policies.value)} policies")
    app_policy = next(p for p in policies.value if p.policy_type == OperationApprovalPolicyType.App)
    check(app_policy.policy_set.policy_type == OperationApprovalPolicyType.App, "the app policy's policySet is app")
    check([p.value for p in app_policy.policy_set.policy_platform] == ["notApplicable"], "platform notApplicable")
    check(len(app_policy.approver_group_ids) == 1, "approverGroupIds parse")
    one_policy = await bob.device_management.operation_approval_policies.by_operation_approval_policy_id(
        app_policy.id
    ).get()
    check(one_policy.display_name == app_policy.display_name, "reads one policy")
    approvable = await bob.device_management.operation_approval_policies.retrieve_approvable_operations.get()
    check(
        OperationApprovalPolicyType.App in [s.policy_type for s in approvable.value],
        "bob may approve app operations",
    )
    requiring = await alice.device_management.operation_approval_policies.retrieve_operations_requiring_approval.get()
    check(
        OperationApprovalPolicyType.Script in [s.policy_type for s in requiring.value],
        "script operations require approval",
    )
    print("conformance: all checks passed", flush=True)


asyncio.run(main())
