# reco-db with the training extra, for docker-compose.yml.
FROM python:3.11-slim

WORKDIR /app
# The CPU build of torch: the default wheel on PyPI is a multi-GB CUDA build.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md alembic.ini ./
COPY reco reco
COPY sql sql
COPY alembic alembic
COPY onnx_models/README.md onnx_models/README.md
RUN pip install --no-cache-dir -e ".[train]"

ENTRYPOINT ["reco-db"]
CMD ["embed-new-items", "--watch", "10"]
