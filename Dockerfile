# One image for every service of compose.yaml: `predprey <command>`.
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# torch first, from the CPU-only index, so the package install below finds it satisfied
RUN pip install torch==2.13.0 --index-url "$TORCH_INDEX"
COPY pyproject.toml README.md ./
COPY src ./src
COPY configs ./configs
RUN pip install '.[service]'
RUN useradd --create-home predprey && mkdir -p /data /runs && chown predprey /data /runs
USER predprey
ENTRYPOINT ["predprey"]
CMD ["--help"]
