#ifndef GRACE_CPCI_SHIM_H
#define GRACE_CPCI_SHIM_H
/*
 * A guarded entry into libpci.
 *
 * libpci's default error handler prints and calls exit(1), and its callers assume the handler never
 * returns. A daemon cannot allow that, so every libpci call runs inside grace_pci_list(), which
 * installs handlers that longjmp back to it. The jump crosses only C frames (libpci's and ours),
 * never Swift ones. Variadic libpci calls (pci_lookup_name) are made here because Swift cannot.
 */
#include <pci/pci.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct grace_pci_function {
    uint16_t domain;
    uint8_t bus, device, function;
    uint16_t vendor_id, device_id;
    uint16_t subsystem_vendor_id, subsystem_device_id;
    /* class << 16 | subclass << 8 | programming interface */
    uint32_t class_code;
    uint8_t revision;
    char vendor_name[128];
    char device_name[256];
    /* 1 when the pci.ids file names the device; 0 when device_name is libpci's "Device XXXX" form. */
    uint8_t device_name_known;
} grace_pci_function;

typedef struct grace_pci_trap {
    jmp_buf jump;
    char message[512];
} grace_pci_trap;

/* Function-local thread storage: a file-scope static in a header would not link from Swift. */
static inline grace_pci_trap *grace_pci_current_trap(void) {
    static __thread grace_pci_trap trap;
    return &trap;
}

static void grace_pci_on_error(char *format, ...) {
    grace_pci_trap *trap = grace_pci_current_trap();
    va_list args;
    va_start(args, format);
    vsnprintf(trap->message, sizeof trap->message, format, args);
    va_end(args);
    longjmp(trap->jump, 1);
}

static void grace_pci_ignore(char *format, ...) { (void)format; }

/*
 * Scans the PCI functions under sysfs_path (the folder holding devices/, e.g. /sys/bus/pci) and fills
 * up to capacity entries of out. Returns the number of functions found (which may exceed capacity:
 * call again with a larger buffer), or -1 with error filled in.
 * ids_path may be NULL for libpci's default pci.ids.
 */
static inline int grace_pci_list(const char *sysfs_path, const char *ids_path, grace_pci_function *out,
                                 int capacity, char *error, size_t error_size) {
    grace_pci_trap *trap = grace_pci_current_trap();
    struct pci_access *volatile access = NULL;
    volatile int count = 0;
    trap->message[0] = 0;
    if (setjmp(trap->jump) != 0) {
        snprintf(error, error_size, "libpci: %s", trap->message);
        /* The access object may be half-built; leaking it beats a second error inside cleanup. */
        return -1;
    }
    access = pci_alloc();
    access->error = grace_pci_on_error;
    access->warning = grace_pci_ignore;
    access->debug = grace_pci_ignore;
    access->method = PCI_ACCESS_SYS_BUS_PCI;
    pci_set_param(access, "sysfs.path", (char *)sysfs_path);
    if (ids_path != NULL) pci_set_name_list_path(access, (char *)ids_path, 0);
    pci_init(access);
    pci_scan_bus(access);
    for (struct pci_dev *dev = access->devices; dev != NULL; dev = dev->next) {
        if (count < capacity) {
            grace_pci_function *entry = &out[count];
            memset(entry, 0, sizeof *entry);
            pci_fill_info(dev, PCI_FILL_IDENT | PCI_FILL_CLASS | PCI_FILL_CLASS_EXT | PCI_FILL_SUBSYS);
            entry->domain = (uint16_t)dev->domain;
            entry->bus = dev->bus;
            entry->device = dev->dev;
            entry->function = dev->func;
            entry->vendor_id = dev->vendor_id;
            entry->device_id = dev->device_id;
            entry->subsystem_vendor_id = dev->subsys_vendor_id;
            entry->subsystem_device_id = dev->subsys_id;
            entry->class_code = ((uint32_t)dev->device_class << 8) | dev->prog_if;
            entry->revision = dev->rev_id;
            /* Names come from the pci.ids file alone (not udev's hwdb), so that a name is the file's. */
            pci_lookup_name(access, entry->vendor_name, sizeof entry->vendor_name,
                            PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_HWDB, dev->vendor_id);
            entry->device_name_known =
                pci_lookup_name(access, entry->device_name, sizeof entry->device_name,
                                PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB, dev->vendor_id,
                                dev->device_id) != NULL;
            if (!entry->device_name_known)
                snprintf(entry->device_name, sizeof entry->device_name, "Device %04x", dev->device_id);
        }
        count++;
    }
    pci_cleanup(access);
    return count;
}

/*
 * Reads the pci.ids file at path as a scan would. Returns 1 when libpci parsed it, 0 when libpci could
 * not open it, or -1 with error filled in (libpci's syntax error with the line) when it is no pci.ids.
 */
static inline int grace_pci_check_names(const char *path, char *error, size_t error_size) {
    grace_pci_trap *trap = grace_pci_current_trap();
    struct pci_access *volatile access = NULL;
    trap->message[0] = 0;
    if (setjmp(trap->jump) != 0) {
        snprintf(error, error_size, "%s", trap->message);
        return -1;
    }
    access = pci_alloc();
    access->error = grace_pci_on_error;
    access->warning = grace_pci_ignore;
    access->debug = grace_pci_ignore;
    pci_set_name_list_path(access, (char *)path, 0);
    int loaded = pci_load_name_list(access);
    pci_cleanup(access);
    return loaded;
}
#endif
