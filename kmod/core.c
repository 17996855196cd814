// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap core: the /dev/netmap character device and NIOCCTRL dispatch.
 *
 * Owns the device's file operations and the validation of the request header
 * every NIOCCTRL starts with (version, reserved bits, name termination).
 * Request types are handed to the files that own them.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include <net/netmap.h>

#include "pt_guest.h"

/*
 * Validate the fixed header of a NIOCCTRL request. Everything here comes
 * straight from userspace, so each field is checked before anything else
 * looks at the request.
 */
static int ptnm_check_header(const struct nmreq_header *hdr)
{
	if (hdr->nr_version < NETMAP_MIN_API ||
	    hdr->nr_version > NETMAP_MAX_API) {
		pr_info_ratelimited("request version %u, supported %u..%u\n",
				    hdr->nr_version, NETMAP_MIN_API,
				    NETMAP_MAX_API);
		return -EINVAL;
	}
	if (hdr->nr_reserved)
		return -EINVAL;
	if (strnlen(hdr->nr_name, sizeof(hdr->nr_name)) == sizeof(hdr->nr_name))
		return -EINVAL;
	return 0;
}

static long ptnm_ctrl(struct file *file, void __user *uarg)
{
	struct nmreq_header hdr;
	int err;

	if (copy_from_user(&hdr, uarg, sizeof(hdr)))
		return -EFAULT;
	err = ptnm_check_header(&hdr);
	if (err)
		return err;

	switch (hdr.nr_reqtype) {
	case NETMAP_REQ_PORT_INFO_GET:
		if (!hdr.nr_body)
			return -EINVAL;
		/* No port types exist yet: every name is unknown. */
		return -ENXIO;
	default:
		return -EINVAL;
	}
}

static long ptnm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case NIOCCTRL:
		return ptnm_ctrl(file, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations ptnm_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = ptnm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice ptnm_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "netmap",
	.fops = &ptnm_fops,
	.mode = 0666,
};

static int __init ptnm_init(void)
{
	int err;

	err = misc_register(&ptnm_miscdev);
	if (err) {
		pr_err("cannot register /dev/netmap: %d\n", err);
		return err;
	}
	err = ptg_init();
	if (err) {
		pr_err("cannot register the guest driver: %d\n", err);
		misc_deregister(&ptnm_miscdev);
		return err;
	}
	pr_info("netmap API %d ready on /dev/netmap\n", NETMAP_API);
	return 0;
}

static void __exit ptnm_exit(void)
{
	ptg_exit();
	misc_deregister(&ptnm_miscdev);
}

module_init(ptnm_init);
module_exit(ptnm_exit);

MODULE_DESCRIPTION("ptnetmap: netmap ports for KVM guests over shared memory");
MODULE_LICENSE("GPL");
