# Airflow on EKS: a private cluster (API endpoint inside the VPC only), a managed node group in
# the private subnets, and the official apache-airflow Helm chart with CeleryExecutor, using the
# RDS metadata database and the ElastiCache broker of this deployment. The Celery workers' pods
# get the crawler role through EKS Pod Identity; no other Airflow component has AWS access.
#
# The chart reads the metadata connection, broker URL and result backend from Kubernetes secrets
# (var.airflow_secret_names) made from the Secrets Manager secrets (docs/DEPLOY.md), so no
# password passes through Terraform.

locals {
  namespace             = "airflow"
  worker_serviceaccount = "attest-worker"
}

data "aws_iam_policy_document" "eks_key" {
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  count = local.eks

  statement {
    sid       = "AccountIAMDelegation"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypts"
    effect    = "Allow"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/eks/${var.name}/*"]
    }
  }

  # The node group's Auto Scaling group launches the nodes with their root volumes encrypted by
  # this key (launch template below). Auto Scaling's service-linked role has no access to
  # customer managed keys through IAM: the key policy must name it, or no node ever starts
  # (docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html).
  # The role must exist before the key policy names it (docs/DEPLOY.md, section 1).
  statement {
    sid       = "AutoScalingUsesKeyForNodeVolumes"
    effect    = "Allow"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"]
    }
  }

  statement {
    sid       = "AutoScalingAttachesNodeVolumes"
    effect    = "Allow"
    actions   = ["kms:CreateGrant"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"]
    }

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}

resource "aws_kms_key" "eks" {
  count                   = local.eks
  description             = "attest ${var.name} EKS secrets envelope encryption, node volumes and logs"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.eks_key[0].json
}

resource "aws_cloudwatch_log_group" "eks" {
  count             = local.eks
  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.eks[0].arn
}

data "aws_iam_policy_document" "eks_cluster_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "eks_cluster" {
  count              = local.eks
  name               = "${var.name}-eks-cluster"
  assume_role_policy = data.aws_iam_policy_document.eks_cluster_trust.json
}

resource "aws_iam_role_policy_attachment" "eks_cluster" {
  count      = local.eks
  role       = aws_iam_role.eks_cluster[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_eks_cluster" "this" {
  count    = local.eks
  name     = var.name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.eks_cluster[0].arn

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  vpc_config {
    subnet_ids              = var.private_subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = false
  }

  encryption_config {
    resources = ["secrets"]

    provider {
      key_arn = aws_kms_key.eks[0].arn
    }
  }

  depends_on = [aws_iam_role_policy_attachment.eks_cluster, aws_cloudwatch_log_group.eks]
}

resource "aws_eks_addon" "pod_identity" {
  count        = local.eks
  cluster_name = aws_eks_cluster.this[0].name
  addon_name   = "eks-pod-identity-agent"
}

data "aws_iam_policy_document" "eks_node_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "eks_node" {
  count              = local.eks
  name               = "${var.name}-eks-node"
  assume_role_policy = data.aws_iam_policy_document.eks_node_trust.json
}

resource "aws_iam_role_policy_attachment" "eks_node" {
  for_each = local.eks == 1 ? toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
  ]) : toset([])

  role       = aws_iam_role.eks_node[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

# Nodes: IMDSv2 only, with a hop limit of 1 so pods cannot borrow the node's role (they get
# theirs from Pod Identity); encrypted volumes; the cluster's group and the workers' group.
resource "aws_launch_template" "eks_node" {
  count       = local.eks
  name_prefix = "${var.name}-eks-node-"

  vpc_security_group_ids = [aws_eks_cluster.this[0].vpc_config[0].cluster_security_group_id, var.workers_security_group_id]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size = var.node_disk_gb
      volume_type = "gp3"
      encrypted   = true
      kms_key_id  = aws_kms_key.eks[0].arn
    }
  }
}

resource "aws_eks_node_group" "workers" {
  count           = local.eks
  cluster_name    = aws_eks_cluster.this[0].name
  node_group_name = "${var.name}-workers"
  node_role_arn   = aws_iam_role.eks_node[0].arn
  subnet_ids      = var.private_subnet_ids
  instance_types  = var.node_instance_types
  ami_type        = var.node_ami_type

  scaling_config {
    min_size     = var.min_workers + 1
    desired_size = var.min_workers + 1
    max_size     = var.max_workers + 1
  }

  launch_template {
    id      = aws_launch_template.eks_node[0].id
    version = aws_launch_template.eks_node[0].latest_version
  }

  depends_on = [aws_iam_role_policy_attachment.eks_node]
}

resource "aws_eks_pod_identity_association" "worker" {
  count           = local.eks
  cluster_name    = aws_eks_cluster.this[0].name
  namespace       = local.namespace
  service_account = local.worker_serviceaccount
  role_arn        = var.worker_role_arn
}

resource "helm_release" "airflow" {
  count            = local.eks
  name             = "airflow"
  repository       = "https://airflow.apache.org"
  chart            = "airflow"
  version          = var.chart_version
  namespace        = local.namespace
  create_namespace = true
  wait             = true
  timeout          = 900

  values = [yamlencode({
    executor = "CeleryExecutor"
    # The Airflow in the image: the chart picks its commands and migrations by this version.
    airflowVersion = var.airflow_version
    images = {
      airflow = {
        repository = var.airflow_image_repository
        tag        = var.airflow_image_tag
        pullPolicy = "IfNotPresent"
      }
    }
    # The metadata database and the broker are this deployment's RDS and ElastiCache.
    postgresql = { enabled = false }
    redis      = { enabled = false }
    pgbouncer  = { enabled = false }
    data = {
      metadataSecretName      = var.airflow_secret_names.metadata
      brokerUrlSecretName     = var.airflow_secret_names.broker_url
      resultBackendSecretName = var.airflow_secret_names.result_backend
    }
    config = {
      core   = { load_examples = "False" }
      celery = { worker_concurrency = tostring(var.worker_concurrency), worker_prefetch_multiplier = "1" }
    }
    env = [for k, v in var.attest_environment : { name = k, value = v }]
    # The index database's password, from the Kubernetes secret made from Secrets Manager (the
    # chart gives `secret` entries to every Airflow pod; only the workers use it).
    secret = [{ envName = "PGPASSWORD", secretName = var.airflow_secret_names.index_db, secretKey = "password" }]
    workers = {
      replicas       = var.min_workers
      serviceAccount = { create = true, name = local.worker_serviceaccount }
      resources = {
        requests = { cpu = var.worker_cpu, memory = var.worker_memory }
        limits   = { memory = var.worker_memory }
      }
    }
  })]

  depends_on = [aws_eks_node_group.workers, aws_eks_pod_identity_association.worker, aws_eks_addon.pod_identity]
}
