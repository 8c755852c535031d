# The controller's image: `rollout controller` on a small Python base, as a non-root user, working
# with a read-only root filesystem (the chart sets readOnlyRootFilesystem). The steps mirror
# tests/packaging/test_wheel.py: build the wheel, install it into a clean virtualenv, run the entrypoint.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rollout ./rollout
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /venv \
 && /venv/bin/pip install --no-cache-dir /wheels/*.whl \
 && /venv/bin/rollout controller --help >/dev/null

FROM python:3.11-slim
COPY --from=build /venv /venv
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin rollout
# No .pyc written at run time (the root filesystem is read-only), logs unbuffered.
ENV PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["rollout"]
CMD ["controller"]
