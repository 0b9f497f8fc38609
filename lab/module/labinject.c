// SPDX-License-Identifier: GPL-2.0
/*
 * labinject: fault injection for the GraceAPI real-kernel lab (guest only).
 *
 * Stock QEMU 7.2 never makes a device look "not ready" after a reset, so this module
 * interposes on configuration space.  It wraps the pci_ops of the bus each target sits on and
 * of the bus its upstream bridge sits on (pci_bus_set_ops, as drivers/pci/pcie/aer_inject.c
 * does), watches for a reset of a target and then, for a window of N ms:
 *
 *   cxl target:  clears Memory_Active (bit 1) in the CXL DVSEC Range 1 Size Low register;
 *   ones target: every configuration read of the function returns all-ones.
 *
 * A reset is a Function Level Reset (Device Control bit 15 written in the target's PCIe
 * capability) or a Secondary Bus Reset (Bridge Control bit 6 written in the target's upstream
 * bridge).  Every reader sees the result: sysfs "config", lspci, VFIO and in-kernel drivers.
 *
 * The window lengths are writable parameters under /sys/module/labinject/parameters, so a test
 * re-arms (or disarms, with 0) the injection between resets without reloading the module.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/ktime.h>
#include <linux/spinlock.h>

static char *cxl_bdf = "";
module_param(cxl_bdf, charp, 0444);
MODULE_PARM_DESC(cxl_bdf, "CXL function whose Memory_Active drops after a reset (DDDD:BB:DD.F)");

static char *ones_bdf = "";
module_param(ones_bdf, charp, 0444);
MODULE_PARM_DESC(ones_bdf, "function whose config reads return all-ones after a reset");

static unsigned int cxl_window_ms;
module_param(cxl_window_ms, uint, 0644);
MODULE_PARM_DESC(cxl_window_ms, "ms Memory_Active stays 0 after a reset of cxl_bdf (0: off)");

static unsigned int ones_window_ms;
module_param(ones_window_ms, uint, 0644);
MODULE_PARM_DESC(ones_window_ms, "ms config reads of ones_bdf return all-ones after a reset (0: off)");

static unsigned int cxl_range_reg = 0x128;
module_param(cxl_range_reg, uint, 0444);
MODULE_PARM_DESC(cxl_range_reg, "config offset of the DVSEC Range 1 Size Low register");

static int cxl_timeout_code = -1;
module_param(cxl_timeout_code, int, 0644);
MODULE_PARM_DESC(cxl_timeout_code, "Memory_Active_Timeout code (0-7) to report; -1 keeps the device's");

static unsigned int triggers;
module_param(triggers, uint, 0444);
MODULE_PARM_DESC(triggers, "resets of a target seen so far");

/* One function the module watches, by bus number and devfn (stable across hot-unplug). */
struct target {
	bool valid;
	int domain;
	unsigned char bus, devfn;
	unsigned char bridge_bus, bridge_devfn;	/* its upstream bridge */
	int exp_cap;				/* PCIe capability offset, for FLR */
	u64 until_ns;				/* window end, ktime_get_ns(); 0 when closed */
};

static struct target cxl_t, ones_t;
static DEFINE_SPINLOCK(window_lock);

/* A wrapped bus and the ops it had. */
#define MAX_BUSES 4
struct wrapped {
	struct pci_bus *bus;
	struct pci_ops *orig;
};
static struct wrapped wrapped[MAX_BUSES];
static int n_wrapped;

static struct pci_ops *orig_ops(struct pci_bus *bus)
{
	int i;

	for (i = 0; i < n_wrapped; i++)
		if (wrapped[i].bus == bus)
			return wrapped[i].orig;
	return NULL;
}

static bool is_fn(const struct target *t, struct pci_bus *bus, unsigned int devfn)
{
	return t->valid && pci_domain_nr(bus) == t->domain && bus->number == t->bus && devfn == t->devfn;
}

static bool is_bridge(const struct target *t, struct pci_bus *bus, unsigned int devfn)
{
	return t->valid && pci_domain_nr(bus) == t->domain && bus->number == t->bridge_bus &&
	       devfn == t->bridge_devfn;
}

static bool window_open(struct target *t)
{
	unsigned long flags;
	bool open;

	spin_lock_irqsave(&window_lock, flags);
	open = t->until_ns && ktime_get_ns() < t->until_ns;
	if (!open)
		t->until_ns = 0;
	spin_unlock_irqrestore(&window_lock, flags);
	return open;
}

static void open_window(struct target *t, unsigned int ms, const char *why)
{
	unsigned long flags;

	if (!ms)
		return;
	spin_lock_irqsave(&window_lock, flags);
	t->until_ns = ktime_get_ns() + (u64)ms * NSEC_PER_MSEC;
	triggers++;
	spin_unlock_irqrestore(&window_lock, flags);
	pr_info("labinject: %s of %04x:%02x:%02x.%d: not ready for %u ms\n", why, t->domain, t->bus,
		PCI_SLOT(t->devfn), PCI_FUNC(t->devfn), ms);
}

/* Does a write of `size` bytes at `where` set bit `bit` of the 16-bit register at `reg`? */
static bool writes_bit(int where, int size, u32 val, int reg, int bit)
{
	int pos = reg * 8 + bit;	/* absolute bit number in config space */

	if (pos < where * 8 || pos >= (where + size) * 8)
		return false;
	return (val >> (pos - where * 8)) & 1;
}

static void watch_write(struct target *t, unsigned int window, struct pci_bus *bus, unsigned int devfn,
			int where, int size, u32 val)
{
	if (is_fn(t, bus, devfn) && t->exp_cap &&
	    writes_bit(where, size, val, t->exp_cap + PCI_EXP_DEVCTL, 15))
		open_window(t, window, "FLR");
	if (is_bridge(t, bus, devfn) && writes_bit(where, size, val, PCI_BRIDGE_CONTROL, 6))
		open_window(t, window, "secondary bus reset");
}

static int lab_write(struct pci_bus *bus, unsigned int devfn, int where, int size, u32 val)
{
	struct pci_ops *ops = orig_ops(bus);

	if (!ops)
		return PCIBIOS_DEVICE_NOT_FOUND;
	watch_write(&cxl_t, READ_ONCE(cxl_window_ms), bus, devfn, where, size, val);
	watch_write(&ones_t, READ_ONCE(ones_window_ms), bus, devfn, where, size, val);
	return ops->write(bus, devfn, where, size, val);
}

static u32 size_mask(int size)
{
	return size == 4 ? 0xffffffff : (1u << (size * 8)) - 1;
}

static int lab_read(struct pci_bus *bus, unsigned int devfn, int where, int size, u32 *val)
{
	struct pci_ops *ops = orig_ops(bus);
	int reg = cxl_range_reg;
	int timeout = READ_ONCE(cxl_timeout_code);
	bool cxl_open;
	u32 dword;
	int ret;

	if (!ops)
		return PCIBIOS_DEVICE_NOT_FOUND;

	if (is_fn(&ones_t, bus, devfn) && window_open(&ones_t)) {
		*val = size_mask(size);
		return PCIBIOS_SUCCESSFUL;
	}

	if (!is_fn(&cxl_t, bus, devfn) || where + size <= reg || where >= reg + 4)
		return ops->read(bus, devfn, where, size, val);

	cxl_open = window_open(&cxl_t);
	if (!cxl_open && timeout < 0)
		return ops->read(bus, devfn, where, size, val);

	/* Read the whole register, edit it, hand back the bytes asked for. */
	ret = ops->read(bus, devfn, reg, 4, &dword);
	if (ret)
		return ret;
	if (cxl_open)
		dword &= ~BIT(1);				/* Memory_Active */
	if (timeout >= 0 && timeout <= 7)
		dword = (dword & ~GENMASK(15, 13)) | ((u32)timeout << 13);	/* Memory_Active_Timeout */
	*val = (dword >> ((where - reg) * 8)) & size_mask(size);
	return PCIBIOS_SUCCESSFUL;
}

static struct pci_ops lab_ops = {
	.read = lab_read,
	.write = lab_write,
};

static int wrap_bus(struct pci_bus *bus)
{
	int i;

	for (i = 0; i < n_wrapped; i++)
		if (wrapped[i].bus == bus)
			return 0;
	if (n_wrapped == MAX_BUSES)
		return -ENOSPC;
	wrapped[n_wrapped].bus = bus;
	wrapped[n_wrapped].orig = bus->ops;
	n_wrapped++;
	pci_bus_set_ops(bus, &lab_ops);
	return 0;
}

static int setup_target(struct target *t, const char *bdf)
{
	unsigned int domain, bus, slot, fn;
	struct pci_dev *dev, *bridge;
	int ret;

	if (!bdf || !*bdf)
		return 0;
	if (sscanf(bdf, "%x:%x:%x.%x", &domain, &bus, &slot, &fn) != 4)
		return -EINVAL;
	dev = pci_get_domain_bus_and_slot(domain, bus, PCI_DEVFN(slot, fn));
	if (!dev) {
		pr_err("labinject: no PCI function %s\n", bdf);
		return -ENODEV;
	}
	bridge = pci_upstream_bridge(dev);
	if (!bridge) {
		pci_dev_put(dev);
		return -ENODEV;
	}
	t->domain = domain;
	t->bus = bus;
	t->devfn = PCI_DEVFN(slot, fn);
	t->bridge_bus = bridge->bus->number;
	t->bridge_devfn = bridge->devfn;
	t->exp_cap = pci_find_capability(dev, PCI_CAP_ID_EXP);
	ret = wrap_bus(dev->bus);
	if (!ret)
		ret = wrap_bus(bridge->bus);
	pci_dev_put(dev);
	if (!ret)
		t->valid = true;
	pr_info("labinject: watching %s (bridge %02x:%02x.%d)\n", bdf, t->bridge_bus,
		PCI_SLOT(t->bridge_devfn), PCI_FUNC(t->bridge_devfn));
	return ret;
}

static void unwrap_all(void)
{
	while (n_wrapped--)
		pci_bus_set_ops(wrapped[n_wrapped].bus, wrapped[n_wrapped].orig);
	n_wrapped = 0;
}

static int __init labinject_init(void)
{
	int ret;

	ret = setup_target(&cxl_t, cxl_bdf);
	if (!ret)
		ret = setup_target(&ones_t, ones_bdf);
	if (ret)
		unwrap_all();
	return ret;
}

static void __exit labinject_exit(void)
{
	unwrap_all();
}

module_init(labinject_init);
module_exit(labinject_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("GraceAPI lab: make a PCI function look not ready after a reset");
