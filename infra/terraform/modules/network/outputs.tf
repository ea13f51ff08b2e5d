output "vpc_id" {
  description = "The VPC's id."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "The VPC's IPv4 range."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Subnets of the workers (egress through NAT only)."
  value       = aws_subnet.private[*].id
}

output "data_subnet_ids" {
  description = "Subnets of the database and broker (no route out of the VPC)."
  value       = aws_subnet.data[*].id
}

output "workers_security_group_id" {
  description = "Security group of the workers (no inbound rules)."
  value       = aws_security_group.workers.id
}

output "nat_egress_ips" {
  description = "Public IPs every capture leaves from: record them with the captures' provenance."
  value       = aws_eip.nat[*].public_ip
}

output "s3_vpc_endpoint_id" {
  description = "The S3 gateway endpoint of the private subnets."
  value       = aws_vpc_endpoint.s3.id
}
