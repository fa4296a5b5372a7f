# picket's identity in Google Cloud and Workspace: a service account with no
# keys, reachable only from picket's AWS Lambda roles through Workload
# Identity Federation, with read access to Cloud Logging audit logs and (after
# an admin grants domain-wide delegation) the Workspace Reports and Directory
# APIs.

locals {
  # An AWS role session arrives as arn:aws:sts::<account>:assumed-role/<role>/<session>;
  # the pool maps it to attribute.aws_role = arn:aws:sts::<account>:assumed-role/<role>.
  # Role paths are not part of that ARN, so only the role name is kept.
  role_parts = [
    for arn in var.aws_role_arns :
    regex("^arn:(aws[a-z-]*):iam::([0-9]{12}):role/(?:.*/)?([^/]+)$", arn)
  ]
  assumed_role_arns = [for p in local.role_parts : "arn:${p[0]}:sts::${p[1]}:assumed-role/${p[2]}"]

  attribute_condition = format(
    "attribute.aws_role in [%s]",
    join(", ", [for a in local.assumed_role_arns : "'${a}'"]),
  )

  principal_sets = {
    for a in local.assumed_role_arns :
    a => "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.picket.name}/attribute.aws_role/${a}"
  }

  sa_member = "serviceAccount:${google_service_account.picket.email}"
  log_roles = concat(["roles/logging.viewer"], var.read_data_access_logs ? ["roles/logging.privateLogViewer"] : [])

  apis = [
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "sts.googleapis.com",
    "logging.googleapis.com",
    "admin.googleapis.com",
  ]
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset(local.apis) : toset([])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_service_account" "picket" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "picket"
  description  = "picket identity threat detection: reads audit logs; used from AWS Lambda through workload identity federation (no keys)"
}

resource "google_iam_workload_identity_pool" "picket" {
  project                   = var.project_id
  workload_identity_pool_id = var.pool_id
  display_name              = "picket AWS"
  description               = "picket's AWS Lambda roles"

  depends_on = [google_project_service.apis]
}

resource "google_iam_workload_identity_pool_provider" "aws" {
  #checkov:skip=CKV_GCP_125:GitHub Actions OIDC check; this is an AWS provider (no oidc block, which the check does not handle) and attribute_condition pins exact assumed-role ARNs.
  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.picket.workload_identity_pool_id
  workload_identity_pool_provider_id = var.provider_id
  display_name                       = "AWS ${var.aws_account_id}"
  description                        = "Sessions of picket's Lambda roles in AWS account ${var.aws_account_id}"

  attribute_mapping = {
    "google.subject"    = "assertion.arn"
    "attribute.account" = "assertion.account"
    "attribute.aws_role" = join("", [
      "assertion.arn.contains('assumed-role') ? ",
      "assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') ",
      ": assertion.arn",
    ])
  }

  # Only the listed roles: any other principal of the account is refused at
  # the token exchange, before any IAM binding is looked at.
  attribute_condition = local.attribute_condition

  aws {
    account_id = var.aws_account_id
  }
}

# The federated roles may act as the service account ...
resource "google_service_account_iam_member" "workload_identity_user" {
  for_each = local.principal_sets

  service_account_id = google_service_account.picket.name
  role               = "roles/iam.workloadIdentityUser"
  member             = each.value
}

# ... and sign JWTs as it (iamcredentials signJwt), which domain-wide
# delegation needs: picket signs {iss: SA, sub: admin, scope: ...} and trades
# it for a Workspace token. Granted on this service account only.
resource "google_service_account_iam_member" "token_creator" {
  for_each = var.enable_domain_wide_delegation ? local.principal_sets : {}

  service_account_id = google_service_account.picket.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}

resource "google_project_iam_member" "logging" {
  for_each = var.logging_viewer_scope == "project" ? toset(local.log_roles) : toset([])

  project = var.project_id
  role    = each.value
  member  = local.sa_member
}

resource "google_organization_iam_member" "logging" {
  for_each = var.logging_viewer_scope == "organization" ? toset(local.log_roles) : toset([])

  org_id = var.organization_id
  role   = each.value
  member = local.sa_member

  lifecycle {
    precondition {
      condition     = var.organization_id != null
      error_message = "logging_viewer_scope = \"organization\" needs organization_id."
    }
  }
}
