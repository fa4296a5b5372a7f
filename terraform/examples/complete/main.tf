# picket across AWS, Microsoft Entra ID and Google, wired together.
# Values are examples: copy terraform.tfvars.example to terraform.tfvars.

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      app        = "picket"
      managed-by = "terraform"
    }
  }
}

provider "azuread" {
  tenant_id = var.azure_tenant_id
}

provider "google" {
  project = var.gcp_project_id
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "google_project" "this" {}

module "gcp_identity" {
  source = "../../modules/gcp_identity"

  project_id           = var.gcp_project_id
  aws_account_id       = data.aws_caller_identity.current.account_id
  aws_role_arns        = [module.picket.role_arns.poll, module.picket.role_arns.respond]
  logging_viewer_scope = var.gcp_organization_id == null ? "project" : "organization"
  organization_id      = var.gcp_organization_id
}

module "azure_app" {
  source = "../../modules/azure_app"

  display_name                     = "picket"
  enable_response_permissions      = true
  allow_disable_service_principals = true
  federation_issuer                = var.aws_outbound_federation_issuer
  federated_subjects = {
    poll    = module.picket.role_arns.poll
    respond = module.picket.role_arns.respond
  }
}

module "picket" {
  source = "../../modules/picket"

  name_prefix             = "picket"
  package_path            = "${path.root}/${var.package_path}"
  trail_bucket_name       = var.trail_bucket_name
  trail_bucket_account_id = var.trail_bucket_account_id
  ses_sender              = var.ses_sender
  respond_mode            = var.respond_mode
  alarm_actions           = var.alarm_sns_topic_arns
  log_retention_days      = 365

  protected_principal_arns = [
    for name in var.break_glass_user_names :
    "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:user/${name}"
  ]

  # Entra and Google ids (tenant, client id, service account) belong in the
  # picket.toml packaged with the functions (infra/package-lambda.sh --config):
  # the Azure and Google modules depend on the picket roles, so passing their
  # outputs back here would be a cycle.
  environment = {
    RUST_LOG = "info"
  }
}
