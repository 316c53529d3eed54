"""A small cffi (ABI mode) binding to liblilv, the LV2 host library.

Only what discovery and hosting need: the world, plug-ins, ports and their scale
points, nodes, instantiation, the LV2 State extension (``lilv_state_*``), the Worker
extension's structs (:mod:`dsp_core.lv2_work`); and, from serd (the
Turtle library lilv uses), a reader to check a state's text before lilv reads it.
``lilv_instance_run`` and friends are inline functions in ``lilv.h``, so instances
are driven through the plug-in's ``LV2_Descriptor`` function pointers, which is what
those inline functions do.

ABI mode (``ffi.dlopen``) needs only the Debian runtime ``liblilv-0-0``: no
compiler and no headers at install time. The ``lilv`` Python bindings Debian ships
(``python3-lilv``) bind Debian's own Python, not the interpreter the project runs on,
and PyPI has no ``lilv`` package.
"""

from __future__ import annotations

import functools
from typing import Any

from cffi import FFI

from .errors import DspError


class Lv2Unavailable(DspError):
    """liblilv is not installed, so no LV2 plug-in can be listed or hosted."""


CDEF = """
typedef void LilvWorld;
typedef void LilvPlugin;
typedef void LilvPlugins;
typedef void LilvPort;
typedef void LilvNode;
typedef void LilvNodes;
typedef void LilvPluginClass;
typedef void LilvIter;
typedef void LilvScalePoint;
typedef void LilvScalePoints;
typedef void* LV2_Handle;
typedef uint32_t LV2_URID;

typedef struct { const char* URI; void* data; } LV2_Feature;
typedef struct {
    void* handle;
    LV2_URID (*map)(void* handle, const char* uri);
} LV2_URID_Map;
typedef struct {
    void* handle;
    const char* (*unmap)(void* handle, LV2_URID urid);
} LV2_URID_Unmap;
typedef struct {
    uint32_t context; uint32_t subject; LV2_URID key; uint32_t size; LV2_URID type;
    const void* value;
} LV2_Options_Option;

typedef struct {
    void* handle;
    int (*schedule_work)(void* handle, uint32_t size, const void* data);
} LV2_Worker_Schedule;
typedef int (*LV2_Worker_Respond_Function)(void* handle, uint32_t size, const void* data);
typedef struct {
    int (*work)(LV2_Handle instance, LV2_Worker_Respond_Function respond, void* handle,
                uint32_t size, const void* data);
    int (*work_response)(LV2_Handle instance, uint32_t size, const void* body);
    int (*end_run)(LV2_Handle instance);
} LV2_Worker_Interface;

typedef struct LV2_Descriptor {
    const char* URI;
    LV2_Handle (*instantiate)(const struct LV2_Descriptor*, double, const char*,
                              const LV2_Feature* const*);
    void (*connect_port)(LV2_Handle, uint32_t, void*);
    void (*activate)(LV2_Handle);
    void (*run)(LV2_Handle, uint32_t);
    void (*deactivate)(LV2_Handle);
    void (*cleanup)(LV2_Handle);
    const void* (*extension_data)(const char*);
} LV2_Descriptor;

typedef struct {
    const LV2_Descriptor* lv2_descriptor;
    LV2_Handle lv2_handle;
    void* pimpl;
} LilvInstance;

LilvWorld* lilv_world_new(void);
void lilv_world_free(LilvWorld* world);
void lilv_world_load_all(LilvWorld* world);
const LilvPlugins* lilv_world_get_all_plugins(const LilvWorld* world);

LilvIter* lilv_plugins_begin(const LilvPlugins* collection);
const LilvPlugin* lilv_plugins_get(const LilvPlugins* collection, LilvIter* i);
LilvIter* lilv_plugins_next(const LilvPlugins* collection, LilvIter* i);
bool lilv_plugins_is_end(const LilvPlugins* collection, LilvIter* i);
const LilvPlugin* lilv_plugins_get_by_uri(const LilvPlugins* plugins, const LilvNode* uri);

LilvNode* lilv_new_uri(LilvWorld* world, const char* uri);
void lilv_node_free(LilvNode* val);
const char* lilv_node_as_uri(const LilvNode* value);
const char* lilv_node_as_string(const LilvNode* value);
float lilv_node_as_float(const LilvNode* value);
bool lilv_node_is_float(const LilvNode* value);
bool lilv_node_is_int(const LilvNode* value);
int lilv_node_as_int(const LilvNode* value);

LilvIter* lilv_nodes_begin(const LilvNodes* collection);
const LilvNode* lilv_nodes_get(const LilvNodes* collection, LilvIter* i);
LilvIter* lilv_nodes_next(const LilvNodes* collection, LilvIter* i);
bool lilv_nodes_is_end(const LilvNodes* collection, LilvIter* i);
void lilv_nodes_free(LilvNodes* collection);

const LilvNode* lilv_plugin_get_uri(const LilvPlugin* plugin);
LilvNode* lilv_plugin_get_name(const LilvPlugin* plugin);
const LilvPluginClass* lilv_plugin_get_class(const LilvPlugin* plugin);
const LilvNode* lilv_plugin_class_get_label(const LilvPluginClass* plugin_class);
uint32_t lilv_plugin_get_num_ports(const LilvPlugin* plugin);
bool lilv_plugin_has_latency(const LilvPlugin* plugin);
uint32_t lilv_plugin_get_latency_port_index(const LilvPlugin* plugin);
LilvNodes* lilv_plugin_get_required_features(const LilvPlugin* plugin);
const LilvPort* lilv_plugin_get_port_by_index(const LilvPlugin* plugin, uint32_t index);
LilvNodes* lilv_plugin_get_value(const LilvPlugin* plugin, const LilvNode* predicate);
bool lilv_nodes_contains(const LilvNodes* nodes, const LilvNode* value);

const LilvNode* lilv_port_get_symbol(const LilvPlugin* plugin, const LilvPort* port);
LilvNode* lilv_port_get_name(const LilvPlugin* plugin, const LilvPort* port);
bool lilv_port_is_a(const LilvPlugin* plugin, const LilvPort* port, const LilvNode* port_class);
bool lilv_port_has_property(const LilvPlugin* plugin, const LilvPort* port,
                            const LilvNode* property);
void lilv_port_get_range(const LilvPlugin* plugin, const LilvPort* port,
                         LilvNode** deflt, LilvNode** min, LilvNode** max);
bool lilv_port_supports_event(const LilvPlugin* plugin, const LilvPort* port,
                              const LilvNode* event_type);
LilvNode* lilv_port_get(const LilvPlugin* plugin, const LilvPort* port,
                        const LilvNode* predicate);
LilvScalePoints* lilv_port_get_scale_points(const LilvPlugin* plugin, const LilvPort* port);
LilvIter* lilv_scale_points_begin(const LilvScalePoints* collection);
const LilvScalePoint* lilv_scale_points_get(const LilvScalePoints* collection, LilvIter* i);
LilvIter* lilv_scale_points_next(const LilvScalePoints* collection, LilvIter* i);
bool lilv_scale_points_is_end(const LilvScalePoints* collection, LilvIter* i);
void lilv_scale_points_free(LilvScalePoints* collection);
const LilvNode* lilv_scale_point_get_label(const LilvScalePoint* point);
const LilvNode* lilv_scale_point_get_value(const LilvScalePoint* point);

LilvInstance* lilv_plugin_instantiate(const LilvPlugin* plugin, double sample_rate,
                                      const LV2_Feature* const* features);
void lilv_instance_free(LilvInstance* instance);

typedef void LilvState;
LilvState* lilv_state_new_from_instance(
    const LilvPlugin* plugin, LilvInstance* instance, LV2_URID_Map* map,
    const char* scratch_dir, const char* copy_dir, const char* link_dir, const char* save_dir,
    void* get_value, void* user_data, uint32_t flags, const LV2_Feature* const* features);
char* lilv_state_to_string(LilvWorld* world, LV2_URID_Map* map, LV2_URID_Unmap* unmap,
                           const LilvState* state, const char* uri, const char* base_uri);
LilvState* lilv_state_new_from_string(LilvWorld* world, LV2_URID_Map* map, const char* str);
void lilv_state_restore(const LilvState* state, LilvInstance* instance, void* set_value,
                        void* user_data, uint32_t flags, const LV2_Feature* const* features);
const LilvNode* lilv_state_get_plugin_uri(const LilvState* state);
void lilv_state_free(LilvState* state);
void lilv_free(void* ptr);
"""

SERD_CDEF = """
typedef struct {
    const uint8_t* buf; size_t n_bytes; size_t n_chars; uint32_t flags; int type;
} SerdNode;
typedef void SerdReader;
typedef int (*SerdStatementSink)(void* handle, uint32_t flags, const SerdNode* graph,
                                 const SerdNode* subject, const SerdNode* predicate,
                                 const SerdNode* object, const SerdNode* object_datatype,
                                 const SerdNode* object_lang);
SerdReader* serd_reader_new(int syntax, void* handle, void* free_handle, void* base_sink,
                            void* prefix_sink, SerdStatementSink statement_sink,
                            void* end_sink);
int serd_reader_read_string(SerdReader* reader, const uint8_t* utf8);
void serd_reader_free(SerdReader* reader);
"""

ffi = FFI()
ffi.cdef(CDEF)
ffi.cdef(SERD_CDEF)

LIBRARY = "liblilv-0.so.0"
SERD_LIBRARY = "libserd-0.so.0"  # lilv's own dependency (Debian libserd-0-0)

LV2 = "http://lv2plug.in/ns/lv2core#"
ATOM = "http://lv2plug.in/ns/ext/atom#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
MIDI_EVENT = "http://lv2plug.in/ns/ext/midi#MidiEvent"
MINIMUM_SIZE = "http://lv2plug.in/ns/ext/resize-port#minimumSize"
URID_MAP = "http://lv2plug.in/ns/ext/urid#map"
URID_UNMAP = "http://lv2plug.in/ns/ext/urid#unmap"
OPTIONS = "http://lv2plug.in/ns/ext/options#options"
BOUNDED_BLOCK = "http://lv2plug.in/ns/ext/buf-size#boundedBlockLength"
WORKER_SCHEDULE = "http://lv2plug.in/ns/ext/worker#schedule"
WORKER_INTERFACE = "http://lv2plug.in/ns/ext/worker#interface"


@functools.cache
def lib() -> Any:
    """The loaded liblilv (raises :class:`Lv2Unavailable` when it is not installed)."""
    try:
        return ffi.dlopen(LIBRARY)
    except OSError as exc:
        raise Lv2Unavailable(
            f"cannot load {LIBRARY} ({exc}); install the Debian package liblilv-0-0 "
            "(see scripts/apt-packages.txt) to list and host LV2 plug-ins") from None


@functools.cache
def serd() -> Any:
    """The loaded libserd, which liblilv depends on (:class:`Lv2Unavailable` without it)."""
    lib()
    try:
        return ffi.dlopen(SERD_LIBRARY)
    except OSError as exc:
        raise Lv2Unavailable(f"cannot load {SERD_LIBRARY} ({exc}); install the Debian "
                             "package libserd-0-0 (liblilv-0-0 depends on it)") from None


def text(ptr: Any) -> str:
    """A C string from lilv as Python text ('' for NULL)."""
    return "" if ptr == ffi.NULL else ffi.string(ptr).decode("utf-8", "replace")


def take_text(node: Any) -> str:
    """The string of a node the caller owns, freeing the node."""
    if node == ffi.NULL:
        return ""
    try:
        return text(lib().lilv_node_as_string(node))
    finally:
        lib().lilv_node_free(node)


def take_float(node: Any) -> float | None:
    """The number of a node the caller owns (None for NULL or not a number), freeing it."""
    if node == ffi.NULL:
        return None
    lilv = lib()
    try:
        if lilv.lilv_node_is_float(node) or lilv.lilv_node_is_int(node):
            return float(lilv.lilv_node_as_float(node))
        return None
    finally:
        lilv.lilv_node_free(node)


def iterate(begin: Any, get: Any, next_: Any, is_end: Any, collection: Any) -> list[Any]:
    """Every element of a lilv collection."""
    out, it = [], begin(collection)
    while not is_end(collection, it):
        out.append(get(collection, it))
        it = next_(collection, it)
    return out
