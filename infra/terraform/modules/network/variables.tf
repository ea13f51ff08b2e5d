variable "name" {
  description = "Name prefix of every network resource (e.g. attest-prod)."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's IPv4 range; subnets are /20s cut from it (a /16 is expected)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && tonumber(split("/", var.cidr_block)[1]) <= 16
    error_message = "cidr_block must be a valid IPv4 CIDR of /16 or larger."
  }
}

variable "availability_zones" {
  description = "Availability zones of the subnets, by name (2 or 3; RDS and MWAA need at least 2)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3
    error_message = "Give 2 or 3 availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway (one egress IP, cheaper, one AZ's failure stops captures) instead of one per AZ."
  type        = bool
  default     = false
}

variable "crawl_egress_ports" {
  description = "TCP ports the crawlers may reach on the internet."
  type        = list(number)
  default     = [80, 443]

  validation {
    condition     = alltrue([for p in var.crawl_egress_ports : p >= 1 && p <= 65535])
    error_message = "crawl_egress_ports must be TCP port numbers."
  }
}

variable "flow_log_bucket_arn" {
  description = "ARN of the access-log bucket (evidence_store's log bucket) that receives VPC flow logs."
  type        = string
}
