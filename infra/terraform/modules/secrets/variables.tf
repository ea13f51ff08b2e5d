variable "name" {
  description = "Name prefix of the secrets (<name>/attest/...) and of the key alias."
  type        = string
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can still be restored (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.recovery_window_in_days >= 7 && var.recovery_window_in_days <= 30
    error_message = "recovery_window_in_days must be between 7 and 30."
  }
}
