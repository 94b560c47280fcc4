// C ABI over faiss 1.7.3; see include/cfaiss.h for the conventions (status codes, thread-local last error).
#include "cfaiss.h"

#include <cxxabi.h>
#include <faiss/AutoTune.h>
#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexBinary.h>
#include <faiss/IndexBinaryFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <typeinfo>

struct cfaiss_index {
    faiss::Index *index;
};
struct cfaiss_binary_index {
    faiss::IndexBinary *index;
};

namespace {

thread_local std::string last_error;

/// Runs `body`, turning any C++ exception into a status and the thread's last-error message.
template <typename F>
int guarded(F &&body) {
    try {
        body();
        return 0;
    } catch (const faiss::FaissException &e) {
        last_error = e.msg.empty() ? std::string(e.what()) : e.msg;
        return -1;
    } catch (const std::exception &e) {
        last_error = e.what();
        return -2;
    } catch (...) {
        last_error = "unknown C++ exception";
        return -3;
    }
}

int bad_argument(const char *message) {
    last_error = message;
    return -4;
}

std::string class_name(const void *object, const std::type_info &info) {
    (void)object;
    int status = 0;
    char *demangled = abi::__cxa_demangle(info.name(), nullptr, nullptr, &status);
    std::string name = (status == 0 && demangled) ? demangled : info.name();
    std::free(demangled);
    if (name.rfind("faiss::", 0) == 0) name = name.substr(7);
    return name;
}

std::string describe(const faiss::Index *index) {
    if (!index) return "null";
    std::string name = class_name(index, typeid(*index));
    if (auto pt = dynamic_cast<const faiss::IndexPreTransform *>(index)) {
        return name + "(" + describe(pt->index) + ")";
    }
    if (auto idmap = dynamic_cast<const faiss::IndexIDMap *>(index)) {
        return name + "(" + describe(idmap->index) + ")";
    }
    if (auto refine = dynamic_cast<const faiss::IndexRefine *>(index)) {
        return name + "(" + describe(refine->base_index) + ")";
    }
    return name;
}

const faiss::IndexHNSW *find_hnsw(const faiss::Index *index) {
    while (index) {
        if (auto h = dynamic_cast<const faiss::IndexHNSW *>(index)) return h;
        if (auto pt = dynamic_cast<const faiss::IndexPreTransform *>(index)) {
            index = pt->index;
        } else if (auto idmap = dynamic_cast<const faiss::IndexIDMap *>(index)) {
            index = idmap->index;
        } else if (auto refine = dynamic_cast<const faiss::IndexRefine *>(index)) {
            index = refine->base_index;
        } else {
            return nullptr;
        }
    }
    return nullptr;
}

}  // namespace

extern "C" {

const char *cfaiss_version(void) {
    return "1.7.3";
}

const char *cfaiss_last_error(void) {
    return last_error.c_str();
}

// ---- float indices ----

int cfaiss_index_factory(cfaiss_index **out, int d, const char *description, int metric) {
    if (!out || !description) return bad_argument("null argument");
    if (d <= 0) return bad_argument("dimension must be positive");
    if (metric != CFAISS_METRIC_INNER_PRODUCT && metric != CFAISS_METRIC_L2) {
        return bad_argument("metric must be inner product (0) or L2 (1)");
    }
    return guarded([&] {
        faiss::Index *index = faiss::index_factory(d, description, static_cast<faiss::MetricType>(metric));
        *out = new cfaiss_index{index};
    });
}

int cfaiss_index_read(cfaiss_index **out, const char *path, int io_flags) {
    if (!out || !path) return bad_argument("null argument");
    return guarded([&] {
        faiss::Index *index = faiss::read_index(path, io_flags);
        *out = new cfaiss_index{index};
    });
}

int cfaiss_index_write(const cfaiss_index *index, const char *path) {
    if (!index || !path) return bad_argument("null argument");
    return guarded([&] { faiss::write_index(index->index, path); });
}

void cfaiss_index_free(cfaiss_index *index) {
    if (!index) return;
    delete index->index;
    delete index;
}

int cfaiss_index_train(cfaiss_index *index, int64_t n, const float *x) {
    if (!index || (n > 0 && !x) || n < 0) return bad_argument("null or negative argument");
    return guarded([&] { index->index->train(n, x); });
}

int cfaiss_index_add(cfaiss_index *index, int64_t n, const float *x) {
    if (!index || (n > 0 && !x) || n < 0) return bad_argument("null or negative argument");
    return guarded([&] { index->index->add(n, x); });
}

int cfaiss_index_search(
    const cfaiss_index *index, int64_t n, const float *x, int64_t k, float *distances, int64_t *labels) {
    if (!index || n < 0 || k <= 0 || (n > 0 && (!x || !distances || !labels))) {
        return bad_argument("null or out-of-range argument");
    }
    return guarded([&] { index->index->search(n, x, k, distances, labels); });
}

int cfaiss_index_reconstruct(cfaiss_index *index, int64_t key, float *out) {
    if (!index || !out) return bad_argument("null argument");
    if (key < 0 || key >= index->index->ntotal) return bad_argument("id out of range");
    return guarded([&] {
        faiss::IndexIVF *ivf = faiss::ivflib::try_extract_index_ivf(index->index);
        if (ivf && ivf->direct_map.type == faiss::DirectMap::NoMap) ivf->make_direct_map(true);
        index->index->reconstruct(key, out);
    });
}

int cfaiss_index_reconstruct_n(const cfaiss_index *index, int64_t i0, int64_t ni, float *out) {
    if (!index || (ni > 0 && !out)) return bad_argument("null argument");
    if (i0 < 0 || ni < 0 || i0 + ni > index->index->ntotal) return bad_argument("id range out of range");
    return guarded([&] { index->index->reconstruct_n(i0, ni, out); });
}

int cfaiss_index_set_parameter(cfaiss_index *index, const char *name, double value) {
    if (!index || !name) return bad_argument("null argument");
    return guarded([&] {
        faiss::ParameterSpace space;
        space.set_index_parameter(index->index, name, value);
    });
}

int64_t cfaiss_index_ntotal(const cfaiss_index *index) {
    return index ? index->index->ntotal : 0;
}

int cfaiss_index_d(const cfaiss_index *index) {
    return index ? index->index->d : 0;
}

int cfaiss_index_metric(const cfaiss_index *index) {
    return index ? static_cast<int>(index->index->metric_type) : -1;
}

int cfaiss_index_is_trained(const cfaiss_index *index) {
    return index && index->index->is_trained ? 1 : 0;
}

int64_t cfaiss_index_nlist(const cfaiss_index *index) {
    if (!index) return 0;
    const faiss::IndexIVF *ivf = faiss::ivflib::try_extract_index_ivf(index->index);
    return ivf ? static_cast<int64_t>(ivf->nlist) : 0;
}

int64_t cfaiss_index_nprobe(const cfaiss_index *index) {
    if (!index) return 0;
    const faiss::IndexIVF *ivf = faiss::ivflib::try_extract_index_ivf(index->index);
    return ivf ? static_cast<int64_t>(ivf->nprobe) : 0;
}

int64_t cfaiss_index_ef_search(const cfaiss_index *index) {
    if (!index) return 0;
    const faiss::IndexHNSW *hnsw = find_hnsw(index->index);
    return hnsw ? static_cast<int64_t>(hnsw->hnsw.efSearch) : 0;
}

void cfaiss_index_type_name(const cfaiss_index *index, char *buf, size_t len) {
    if (!buf || len == 0) return;
    std::string name = index ? describe(index->index) : "null";
    std::strncpy(buf, name.c_str(), len - 1);
    buf[len - 1] = 0;
}

// ---- binary indices ----

int cfaiss_binary_index_flat(cfaiss_binary_index **out, int d) {
    if (!out) return bad_argument("null argument");
    if (d <= 0 || d % 8 != 0) return bad_argument("binary dimension must be a positive multiple of 8");
    return guarded([&] { *out = new cfaiss_binary_index{new faiss::IndexBinaryFlat(d)}; });
}

int cfaiss_binary_index_factory(cfaiss_binary_index **out, int d, const char *description) {
    if (!out || !description) return bad_argument("null argument");
    if (d <= 0 || d % 8 != 0) return bad_argument("binary dimension must be a positive multiple of 8");
    return guarded([&] { *out = new cfaiss_binary_index{faiss::index_binary_factory(d, description)}; });
}

int cfaiss_binary_index_read(cfaiss_binary_index **out, const char *path, int io_flags) {
    if (!out || !path) return bad_argument("null argument");
    return guarded([&] { *out = new cfaiss_binary_index{faiss::read_index_binary(path, io_flags)}; });
}

int cfaiss_binary_index_write(const cfaiss_binary_index *index, const char *path) {
    if (!index || !path) return bad_argument("null argument");
    return guarded([&] { faiss::write_index_binary(index->index, path); });
}

void cfaiss_binary_index_free(cfaiss_binary_index *index) {
    if (!index) return;
    delete index->index;
    delete index;
}

int cfaiss_binary_index_train(cfaiss_binary_index *index, int64_t n, const uint8_t *x) {
    if (!index || n < 0 || (n > 0 && !x)) return bad_argument("null or negative argument");
    return guarded([&] { index->index->train(n, x); });
}

int cfaiss_binary_index_add(cfaiss_binary_index *index, int64_t n, const uint8_t *x) {
    if (!index || n < 0 || (n > 0 && !x)) return bad_argument("null or negative argument");
    return guarded([&] { index->index->add(n, x); });
}

int cfaiss_binary_index_search(
    const cfaiss_binary_index *index, int64_t n, const uint8_t *x, int64_t k, int32_t *distances,
    int64_t *labels) {
    if (!index || n < 0 || k <= 0 || (n > 0 && (!x || !distances || !labels))) {
        return bad_argument("null or out-of-range argument");
    }
    return guarded([&] { index->index->search(n, x, k, distances, labels); });
}

int64_t cfaiss_binary_index_ntotal(const cfaiss_binary_index *index) {
    return index ? index->index->ntotal : 0;
}

int cfaiss_binary_index_d(const cfaiss_binary_index *index) {
    return index ? index->index->d : 0;
}

}  // extern "C"
