/* The part of the LV2 core ABI the test plug-ins use, written out so that they build
 * without the LV2 headers (lv2-dev is not installed here). */
#ifndef TEST_LV2_ABI_H
#define TEST_LV2_ABI_H
#include <stdint.h>

typedef void *LV2_Handle;
typedef struct { const char *URI; void *data; } LV2_Feature;
typedef struct LV2_Descriptor {
    const char *URI;
    LV2_Handle (*instantiate)(const struct LV2_Descriptor *, double, const char *,
                              const LV2_Feature *const *);
    void (*connect_port)(LV2_Handle, uint32_t, void *);
    void (*activate)(LV2_Handle);
    void (*run)(LV2_Handle, uint32_t);
    void (*deactivate)(LV2_Handle);
    void (*cleanup)(LV2_Handle);
    const void *(*extension_data)(const char *);
} LV2_Descriptor;

#endif
