# The VPC attest runs in: public subnets hold only the NAT gateways; workers run in private
# subnets whose only way out is NAT (so every capture leaves from a known Elastic IP), and the
# databases in "data" subnets with no route out at all. Nothing accepts inbound traffic from
# the internet.

locals {
  # Named zones, not "the first N available": the subnets never move when AWS adds a zone.
  azs      = var.availability_zones
  az_count = length(var.availability_zones)
  # /20 per subnet out of the VPC's /16 (default): public 0-2, private 4-6, data 8-10.
  public_cidrs  = [for i in range(local.az_count) : cidrsubnet(var.cidr_block, 4, i)]
  private_cidrs = [for i in range(local.az_count) : cidrsubnet(var.cidr_block, 4, i + 4)]
  data_cidrs    = [for i in range(local.az_count) : cidrsubnet(var.cidr_block, 4, i + 8)]
  nat_count     = var.single_nat_gateway ? 1 : local.az_count
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.name }
}

# The default security group allows nothing: every workload gets a group of its own.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-default-deny" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = var.name }
}

resource "aws_subnet" "public" {
  count                   = local.az_count
  vpc_id                  = aws_vpc.this.id
  cidr_block              = local.public_cidrs[count.index]
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = false

  tags = { Name = "${var.name}-public-${local.azs[count.index]}", tier = "public" }
}

resource "aws_subnet" "private" {
  count             = local.az_count
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.private_cidrs[count.index]
  availability_zone = local.azs[count.index]

  tags = { Name = "${var.name}-private-${local.azs[count.index]}", tier = "private" }
}

resource "aws_subnet" "data" {
  count             = local.az_count
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.data_cidrs[count.index]
  availability_zone = local.azs[count.index]

  tags = { Name = "${var.name}-data-${local.azs[count.index]}", tier = "data" }
}

# The crawlers' egress addresses: recorded in capture provenance (see the nat_egress_ips output).
resource "aws_eip" "nat" {
  count  = local.nat_count
  domain = "vpc"
  tags   = { Name = "${var.name}-nat-${count.index}" }
}

resource "aws_nat_gateway" "this" {
  count         = local.nat_count
  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = { Name = "${var.name}-${count.index}" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count          = local.az_count
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  count  = local.az_count
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-private-${local.azs[count.index]}" }
}

resource "aws_route" "private_nat" {
  count                  = local.az_count
  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.single_nat_gateway ? 0 : count.index].id
}

resource "aws_route_table_association" "private" {
  count          = local.az_count
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# Data subnets: no default route. RDS and ElastiCache talk to the VPC only.
resource "aws_route_table" "data" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-data" }
}

resource "aws_route_table_association" "data" {
  count          = local.az_count
  subnet_id      = aws_subnet.data[count.index].id
  route_table_id = aws_route_table.data.id
}

# S3 traffic (WARC uploads, replay, exports) stays on the AWS network instead of crossing NAT.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${data.aws_region.current.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id
  tags              = { Name = "${var.name}-s3" }
}

data "aws_region" "current" {}

# The workers' security group: no ingress at all; egress to the web on the allowed ports (the
# crawl), to the VPC for the database, broker and endpoints, and DNS through the VPC resolver.
resource "aws_security_group" "workers" {
  #checkov:skip=CKV2_AWS_5:Attached outside this module: to the EKS node launch template or the MWAA environment (modules/airflow), and referenced by the database and broker ingress rules.
  name        = "${var.name}-workers"
  description = "attest workers: no inbound; web egress for captures, VPC egress for services"
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "${var.name}-workers" }
}

resource "aws_vpc_security_group_egress_rule" "workers_web" {
  for_each          = toset([for p in var.crawl_egress_ports : tostring(p)])
  security_group_id = aws_security_group.workers.id
  description       = "captures: origins on TCP ${each.value}"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "workers_vpc" {
  security_group_id = aws_security_group.workers.id
  description       = "database, broker, VPC endpoints and the VPC DNS resolver"
  ip_protocol       = "-1"
  cidr_ipv4         = var.cidr_block
}

# VPC flow logs: every connection the crawlers made, to the access-log bucket, kept with the
# evidence store's own logs.
resource "aws_flow_log" "this" {
  vpc_id               = aws_vpc.this.id
  traffic_type         = "ALL"
  log_destination_type = "s3"
  log_destination      = "${var.flow_log_bucket_arn}/vpc-flow-logs/"
  tags                 = { Name = var.name }
}
