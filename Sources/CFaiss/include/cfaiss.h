#ifndef VARAUDIT_CFAISS_H
#define VARAUDIT_CFAISS_H
#ifdef __cplusplus
extern "C" {
#endif
/// faiss's version string (e.g. "1.7.3").
const char *cfaiss_version(void);
#ifdef __cplusplus
}
#endif
#endif
