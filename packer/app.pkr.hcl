# Rendered by Rodeo from inventories/<env>/rodeo.yml ('invoke render'). Do not edit: changes are overwritten.

variable "app" {
  type = string
}

variable "env" {
  type = string
}

variable "region" {
  type = string
}

variable "source_ami" {
  type = string
}

variable "instance_type" {
  type    = string
  default = "t3.micro"
}

variable "ssh_username" {
  type    = string
  default = "admin"
}

variable "volume_size_gb" {
  type    = number
  default = 8
}

variable "copy_to_regions" {
  type    = list(string)
  default = []
}

variable "encrypt_boot" {
  type    = bool
  default = true
}

variable "subnet_id" {
  type    = string
  default = ""
}

variable "ssh_interface" {
  type    = string
  default = "public_ip"
}

variable "associate_public_ip_address" {
  type    = bool
  default = true
}

variable "ssh_source_cidrs" {
  type = list(string)
}

variable "endpoint" {
  type    = string
  default = ""
}

variable "skip_region_validation" {
  type    = bool
  default = false
}

variable "skip_metadata_api_check" {
  type    = bool
  default = false
}

variable "skip_credential_validation" {
  type    = bool
  default = false
}

variable "ssh_host" {
  type    = string
  default = ""
}

variable "ssh_port" {
  type    = number
  default = 22
}

variable "ssh_keypair_name" {
  type = string
}

variable "ssh_private_key_file" {
  type = string
}

variable "python" {
  type    = string
  default = "python3"
}

variable "bake_id" {
  type = string
}

variable "bake_dir" {
  type = string
}

variable "git_sha" {
  type = string
}

variable "inputs_hash" {
  type = string
}

variable "toolkit_version" {
  type = string
}

variable "built_at" {
  type = string
}

variable "app_source" {
  type = string
}

variable "app_commit" {
  type = string
}

variable "app_version" {
  type = string
}

source "amazon-ebs" "app" {
  ami_name                              = "${var.app}-${var.bake_id}"
  ami_description                       = "Rodeo image app of ${var.app} (${var.git_sha})"
  region                                = var.region
  source_ami                            = var.source_ami
  instance_type                         = var.instance_type
  subnet_id                             = var.subnet_id
  associate_public_ip_address           = var.associate_public_ip_address
  ami_regions                           = var.copy_to_regions
  encrypt_boot                          = var.encrypt_boot
  custom_endpoint_ec2                   = var.endpoint
  skip_region_validation                = var.skip_region_validation
  skip_metadata_api_check               = var.skip_metadata_api_check
  skip_credential_validation            = var.skip_credential_validation
  communicator                          = "ssh"
  ssh_interface                         = var.ssh_interface
  ssh_username                          = var.ssh_username
  ssh_host                              = var.ssh_host
  ssh_port                              = var.ssh_port
  ssh_keypair_name                      = var.ssh_keypair_name
  ssh_private_key_file                  = var.ssh_private_key_file
  ssh_timeout                           = "10m"
  temporary_security_group_source_cidrs = var.ssh_source_cidrs
  run_tags                              = {
    "Name"       = "rodeo-bake-${var.bake_id}",
    "rodeo:bake" = var.bake_id,
  }
  tags                                  = {
    "rodeo:app"             = var.app,
    "rodeo:image"           = "app",
    "rodeo:git-sha"         = var.git_sha,
    "rodeo:source-ami"      = var.source_ami,
    "rodeo:inputs-hash"     = var.inputs_hash,
    "rodeo:verified"        = "true",
    "rodeo:toolkit-version" = var.toolkit_version,
    "rodeo:built-at"        = var.built_at,
    "rodeo:app-source"      = var.app_source,
    "rodeo:app-commit"      = var.app_commit,
    "rodeo:app-version"     = var.app_version,
  }
  snapshot_tags                         = {
    "rodeo:app"             = var.app,
    "rodeo:image"           = "app",
    "rodeo:git-sha"         = var.git_sha,
    "rodeo:source-ami"      = var.source_ami,
    "rodeo:inputs-hash"     = var.inputs_hash,
    "rodeo:verified"        = "true",
    "rodeo:toolkit-version" = var.toolkit_version,
    "rodeo:built-at"        = var.built_at,
    "rodeo:app-source"      = var.app_source,
    "rodeo:app-commit"      = var.app_commit,
    "rodeo:app-version"     = var.app_version,
  }

  aws_polling {
    delay_seconds = 1
    max_attempts  = 3600
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.volume_size_gb
    volume_type           = "gp3"
    throughput            = 125
    iops                  = 3000
    delete_on_termination = true
  }
}

build {
  sources = [
    "source.amazon-ebs.app",
  ]

  provisioner "shell-local" {
    inline = [
      "'${var.python}' -m toolkit.bake.handoff --bake-dir '${var.bake_dir}' --host '${build.Host}' --port '${build.Port}' --user '${build.User}'",
    ]
  }

  post-processor "manifest" {
    output     = "${var.bake_dir}/manifest.json"
    strip_path = true
  }
}
